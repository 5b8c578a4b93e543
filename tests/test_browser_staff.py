"""The staff review app in a real browser: sign in, open the queue, reveal, add a note.

The handoff is made the way a person makes it, through the chat's REST channel, on the
session's real running stack; Chromium is Debian's, driven by Playwright.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE = "07700 900718"
USER, PASSWORD = "amira.staff", "a long staff passphrase 42"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def make_handoff(stack) -> str:
    sender = secrets.token_hex(16)
    for message in ["/request_human", "/affirm", '/inform{"contact_method": "phone"}', PHONE,
                    "/skip", "/affirm"]:
        stack.say(sender, message)
    replies = stack.say(sender, "/deny")
    text = "\n".join(r.get("text") or "" for r in replies)
    assert "reference is" in text, text
    return text.split("reference is ")[1].split(".")[0]


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v["id"] for v in results.response["violations"]]


def test_staff_sign_in_queue_reveal_and_note(stack, browser):
    from bot.handoff import HandoffStore
    from bot.web.staff.accounts import StaffAccounts

    reference = make_handoff(stack)
    store = HandoffStore(stack.settings.handoffs_db)
    accounts = StaffAccounts(store)
    if USER not in {u["username"] for u in accounts.list_users()}:
        accounts.add_user(USER, PASSWORD, role="staff")

    page = browser.new_page()
    page.goto(f"{stack.web_url}/staff/")
    assert "/staff/login" in page.url  # anonymous visitors are sent to sign in
    assert axe_violations(page) == []
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button:has-text('Sign in')")
    assert "/staff/login" not in page.url, page.inner_text("main")[:800]
    page.wait_for_selector(f"a:has-text('{reference}')", timeout=10_000)
    assert axe_violations(page) == []

    page.click(f"a:has-text('{reference}')")
    page.wait_for_selector("text=Reveal contact detail")
    assert PHONE not in page.content()  # masked until revealed
    assert axe_violations(page) == []
    page.click("button:has-text('Reveal contact detail')")
    page.wait_for_selector(".revealed")
    assert page.inner_text(".revealed") == PHONE

    page.fill("#note-text", "Rang back at a safe time; no message left.")
    page.click("button:has-text('Add note')")
    page.wait_for_selector("text=Rang back at a safe time")

    actions = [(row["actor"], row["action"]) for row in store.audit()
               if row.get("reference") == reference]
    assert (USER, "reveal") in actions and (USER, "note") in actions
    store.close()
