"""The chat page and the widget in a real browser (Debian's Chromium, driven by Playwright),
against the real stack: Rasa with the trained model, the action server, the web app.

Rasa and the action server are conftest's session `stack`; these tests start their own web
app process beside it (the same command bot.stack runs), with EXIT_URL pointing at its own
/healthz (nothing outside loopback is reachable) and one local widget host origin allowed.
Screenshots go to test-artifacts/ (git-ignored).

Run: .venv/bin/python -m pytest tests/test_browser.py -q
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from bot.settings import PROJECT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
ANSWER_TIMEOUT_MS = 90_000
KNOWLEDGE_QUESTION = "will the doctor tell the home office"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium. Skips (before any server starts) when it is missing.

    Module scope: while Playwright's sync API is open it keeps an event loop running in
    this thread, which would break every later test module that calls asyncio.run()."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# --- The stack ----------------------------------------------------------------------------


class HostSite:
    """Another website (another origin) that embeds the widget with the one-line snippet,
    under a Content-Security-Policy that allows exactly what docs/WIDGET.md asks for."""

    def __init__(self, app_url: str) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>A charity</title><link rel="icon" href="data:,"></head>'
            "<body><main><h1>A charity</h1>"
            "<p>Support for people affected by crime.</p></main>"
            f'<script src="{app_url}/widget.js" defer></script></body></html>'
        ).encode()
        csp = (
            f"default-src 'self'; script-src 'self' {app_url}; style-src 'self' {app_url}; "
            f"connect-src 'self' {app_url}; img-src 'self' data:"
        )

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                found = self.path == "/"
                body = page if found else b"not found"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Security-Policy", csp)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ChatStack:
    url: str
    exit_url: str
    data_dir: Path
    host: HostSite
    stack: object
    extra: list[subprocess.Popen] = field(default_factory=list)

    def events(self, sender: str) -> int:
        db = self.data_dir / "conversations.db"
        if not db.exists():
            return 0
        with sqlite3.connect(db) as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender,)
            ).fetchone()
        return count

    def wait_for_events(self, sender: str, present: bool, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while True:
            count = self.events(sender)
            if (count > 0) == present or time.monotonic() > deadline:
                return count
            time.sleep(0.2)


def web_command(settings, model, endpoints) -> list[str]:
    """The web app's command line, as bot.stack runs it (without websockets: it has none)."""
    from bot.stack import stack_commands

    argv = next(c.argv for c in stack_commands(settings, model, endpoints) if c.name == "web")
    return argv if "--ws" in argv else argv + ["--ws", "none"]


def start_web(running, env: dict[str, str], port: int, log_name: str) -> subprocess.Popen:
    from dataclasses import replace

    settings = replace(running.settings, web_port=port)
    argv = web_command(settings, running.model, running.log_dir / "endpoints.yml")
    log = open(running.log_dir / f"{log_name}.log", "ab")
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"web app exited: see {running.log_dir / (log_name + '.log')}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("web app did not start")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def chat_stack(browser, stack) -> Iterator[ChatStack]:
    """conftest's running stack (real Rasa and action server), with a second web app of
    our own: EXIT_URL is its /healthz (nothing outside loopback is reachable here) and one
    local widget host origin is allowed."""
    import os
    import signal

    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    host = HostSite(app_url)
    env = {**stack.env, "EXIT_URL": f"{app_url}/healthz", "WIDGET_ALLOWED_ORIGINS": host.origin}
    chat = ChatStack(app_url, f"{app_url}/healthz", stack.settings.data_dir, host, stack)
    try:
        chat.extra.append(start_web(stack, env, port, "web-browser-tests"))
        yield chat
    finally:
        for process in chat.extra:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        host.close()


@pytest.fixture(scope="module")
def app_without_rasa(chat_stack) -> str:
    """A second web app whose Rasa is down (a port nobody listens on)."""
    running = chat_stack.stack
    port = free_port()
    env = {**running.env, "RASA_PORT": str(free_port()), "EXIT_URL": chat_stack.exit_url}
    chat_stack.extra.append(start_web(running, env, port, "web-no-rasa"))
    return f"http://127.0.0.1:{port}"


# --- Pages --------------------------------------------------------------------------------


@dataclass
class Recorded:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


def new_page(browser, recorded: Recorded, **context_options):
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_options})
    page = context.new_page()
    page.on("request", lambda request: recorded.requests.append(request.url))
    page.on("console", lambda m: m.type == "error" and recorded.console_errors.append(m.text))
    page.on("pageerror", lambda error: recorded.console_errors.append(str(error)))
    page.set_default_timeout(ANSWER_TIMEOUT_MS)
    return context, page


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def page(browser, chat_stack, recorded):
    """A fresh browser context on the chat page. Afterwards: every request went to the app's
    own origin, no script error or CSP violation happened, and no cookie or localStorage
    entry was made."""
    context, page = new_page(browser, recorded)
    yield page
    foreign = [url for url in recorded.requests
               if origin(url) != chat_stack.url and not url.startswith(("data:", "about:"))]
    assert foreign == [], f"requests to other origins: {foreign}"
    assert recorded.console_errors == [], recorded.console_errors
    assert context.cookies() == []
    if not page.is_closed() and page.url.startswith(chat_stack.url):
        assert page.evaluate("window.localStorage.length") == 0
    context.close()


def open_chat(page, chat_stack) -> None:
    page.goto(chat_stack.url + "/")
    page.wait_for_function("document.readyState === 'complete'")


def bot_messages(page):
    return page.locator(".sr-log .sr-msg--bot")


def send(page, text: str) -> None:
    """Type a message and press Enter; wait until the bot has answered it."""
    before = bot_messages(page).count()
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")
    wait_for_answer(page, before)


def wait_for_answer(page, before: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.sr-log .sr-msg--bot, .sr-log .sr-msg--notice').length > n"
        " && document.querySelector('[data-sr-typing]').textContent === ''",
        arg=before, timeout=ANSWER_TIMEOUT_MS,
    )


def current_sender(page) -> str:
    state = page.evaluate("sessionStorage.getItem('safe-report-chat')")
    match = re.search(r'"sender":"([0-9a-f]+)"', state or "")
    assert match, f"no conversation id in sessionStorage: {state!r}"
    return match.group(1)


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- Talking to the bot -------------------------------------------------------------------


def test_opening_is_shown_before_anything_is_sent(page, chat_stack, recorded):
    open_chat(page, chat_stack)
    body = page.locator("main").inner_text()
    assert "If you are in danger now, call 999" in body
    assert "computer program" in body and "not legal advice" in body
    assert "deleted after 24 hours with no activity" in body
    for choice in ("Something happened to me", "I saw something happen", "I have a question",
                   "I want to talk to a person"):
        assert page.get_by_role("button", name=choice).is_visible()
    assert not any("/api/" in url for url in recorded.requests)
    assert page.evaluate("sessionStorage.length") == 0


def test_send_a_message_and_see_the_answer(page, chat_stack):
    open_chat(page, chat_stack)
    send(page, "hello")
    mine = page.locator(".sr-log .sr-msg--me")
    assert mine.last.inner_text().endswith("hello")
    answer = bot_messages(page).first.inner_text()
    assert "computer program" in answer or "chatbot" in answer
    # Focus stays in the message box; the box is empty for the next message.
    assert page.evaluate("document.activeElement.id") == "sr-input"
    assert page.get_by_label("Your message").input_value() == ""
    sender = current_sender(page)
    assert re.fullmatch(r"[0-9a-f]{32}", sender)  # 128 random bits
    assert chat_stack.wait_for_events(sender, present=True) > 0


def test_quick_replies_send_their_payload_and_show_their_title(page, chat_stack):
    open_chat(page, chat_stack)
    before = bot_messages(page).count()
    page.get_by_role("button", name="Something happened to me").click()
    wait_for_answer(page, before)
    assert page.locator(".sr-log .sr-msg--me").last.inner_text().endswith("Something happened to me")
    assert page.evaluate("document.activeElement.id") == "sr-input"
    replies = page.locator(".sr-log .sr-replies .sr-reply")
    assert replies.count() >= 2
    # Reachable by keyboard: Shift+Tab from the message box reaches the last quick reply,
    # and Enter on it sends it.
    page.keyboard.press("Shift+Tab")
    focused = page.evaluate("document.activeElement.className")
    assert "sr-reply" in focused
    title = page.evaluate("document.activeElement.textContent")
    before = bot_messages(page).count()
    page.keyboard.press("Enter")
    wait_for_answer(page, before)
    assert page.locator(".sr-log .sr-msg--me").last.inner_text().endswith(title)
    # The answered replies are gone; the log keeps what was said.
    assert page.locator(".sr-log .sr-msg--me").count() == 2


def test_knowledge_answer_shows_sources_as_links_with_the_date(page, chat_stack):
    open_chat(page, chat_stack)
    send(page, KNOWLEDGE_QUESTION)
    page.wait_for_selector(".sr-sources a")
    sources = page.locator(".sr-sources").last
    links = sources.locator("a")
    assert links.count() >= 1
    for index in range(links.count()):
        link = links.nth(index)
        assert link.get_attribute("href").startswith("https://")
        assert link.get_attribute("rel") == "noopener noreferrer"
    text = sources.inner_text()
    assert re.search(r"Checked \d{1,2} (January|February|March|April|May|June|July|August|"
                     r"September|October|November|December) \d{4}\.", text)
    answer = page.locator(".sr-log").inner_text()
    assert "information, not legal advice" in answer
    # Phone numbers in the answer are tap-to-call.
    tel = page.locator(".sr-log a[href^='tel:']")
    assert tel.count() >= 1
    assert re.fullmatch(r"tel:\d+", tel.first.get_attribute("href"))
    page.wait_for_timeout(300)
    screenshot(page, "chat-answer-1280")
    page.set_viewport_size({"width": 360, "height": 740})
    page.locator(".sr-sources").last.scroll_into_view_if_needed()
    screenshot(page, "chat-answer-360")


def test_markup_typed_as_a_message_is_shown_as_text_and_never_runs(page, chat_stack):
    open_chat(page, chat_stack)
    markup = ('<img src="/static/x.png" onerror="window.__pwned=1">'
              '<script>window.__pwned=2</script><b>bold</b>')
    send(page, markup)
    mine = page.locator(".sr-log .sr-msg--me p").last
    assert mine.inner_text() == markup
    assert page.locator(".sr-log img, .sr-log script, .sr-log b").count() == 0
    assert page.evaluate("window.__pwned") is None


# --- Leaving and forgetting ---------------------------------------------------------------


def start_conversation(page, chat_stack) -> str:
    """Come from another page, open the chat, say something; the conversation id."""
    page.goto(chat_stack.host.origin + "/")  # the page before the chat in this tab's history
    open_chat(page, chat_stack)
    send(page, "hello")
    sender = current_sender(page)
    assert chat_stack.wait_for_events(sender, present=True) > 0
    return sender


def assert_left_for_good(page, chat_stack, sender: str) -> None:
    page.wait_for_url(chat_stack.exit_url)
    assert page.evaluate("sessionStorage.length") == 0  # the same origin here: check it
    assert chat_stack.wait_for_events(sender, present=False) == 0
    page.go_back()
    page.wait_for_load_state()
    assert not page.url.startswith(chat_stack.url + "/"), "Back returned to the chat"
    assert page.url.startswith(chat_stack.host.origin) or page.url == "about:blank"


def test_quick_exit_button_leaves_deletes_and_back_does_not_return(browser, chat_stack, recorded):
    context, page = new_page(browser, recorded)
    sender = start_conversation(page, chat_stack)
    exit_button = page.locator(".sr-header .sr-exit-button")
    assert exit_button.is_visible()
    exit_button.click()
    assert_left_for_good(page, chat_stack, sender)
    context.close()


def test_quick_exit_by_pressing_shift_three_times(browser, chat_stack, recorded):
    context, page = new_page(browser, recorded)
    sender = start_conversation(page, chat_stack)
    box = page.get_by_label("Your message")
    box.focus()
    # Capital letters use Shift too, but do not count.
    for _ in range(3):
        page.keyboard.press("Shift+H")
    page.wait_for_timeout(200)
    assert page.url.startswith(chat_stack.url + "/")
    box.fill("")
    page.keyboard.press("Shift")
    assert page.locator(".sr-header [data-sr-exit-dots]").is_visible()
    assert "press 2 more times" in page.locator("[data-sr-exit-status]").text_content()
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    assert_left_for_good(page, chat_stack, sender)
    context.close()


def test_shift_presses_expire_after_five_seconds(page, chat_stack):
    open_chat(page, chat_stack)
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    page.wait_for_timeout(5500)
    assert page.locator("[data-sr-exit-status]").text_content() == "Exit this page expired."
    page.keyboard.press("Shift")
    page.wait_for_timeout(200)
    assert page.url.startswith(chat_stack.url + "/")


def test_delete_my_conversation_deletes_it_and_says_so(page, chat_stack):
    open_chat(page, chat_stack)
    send(page, "my husband hits me and says they will deport me")
    sender = current_sender(page)
    assert chat_stack.wait_for_events(sender, present=True) > 0
    page.get_by_role("button", name="Delete my conversation").click()
    status = page.locator("[data-sr-delete-status]")
    status.filter(has_text="has been deleted").wait_for()
    assert page.locator(".sr-log > *").count() == 0
    assert page.evaluate("sessionStorage.length") == 0
    assert chat_stack.wait_for_events(sender, present=False) == 0
    assert page.url.startswith(chat_stack.url + "/")
    # A new message starts a new conversation, with a new id.
    send(page, "hello")
    assert current_sender(page) != sender


def test_exit_from_the_privacy_page_still_deletes_the_conversation(page, chat_stack):
    open_chat(page, chat_stack)
    send(page, "hello")
    sender = current_sender(page)
    page.get_by_role("link", name="Read about your privacy and staying safe online").click()
    page.wait_for_url(chat_stack.url + "/privacy")
    assert "About this service and your privacy" in page.locator("h1").inner_text()
    page.go_back()
    page.wait_for_url(chat_stack.url + "/")
    # Back in the chat: the same conversation continues, without showing what was said.
    assert "continuing the conversation" in page.locator(".sr-log").inner_text()
    assert current_sender(page) == sender
    page.goto(chat_stack.url + "/privacy")
    for _ in range(3):
        page.keyboard.press("Shift")
    page.wait_for_url(chat_stack.exit_url)
    assert chat_stack.wait_for_events(sender, present=False) == 0


# --- When the server cannot be reached ------------------------------------------------------


def test_rasa_down_shows_the_calm_message_and_how_to_try_again(
    browser, chat_stack, app_without_rasa, recorded
):
    context, page = new_page(browser, recorded)
    page.goto(app_without_rasa + "/")
    page.get_by_label("Your message").fill("hello")
    page.get_by_label("Your message").press("Enter")
    notice = page.locator(".sr-log .sr-msg--notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "I can't connect right now. If you are in danger, call 999." in text
    assert "Try again" in text
    assert notice.locator("a[href='tel:999']").count() == 1
    # Trying again tries again (and, Rasa still being down, says so again, calmly).
    notice.get_by_role("button", name="Try again").click()
    page.locator(".sr-log .sr-msg--notice").nth(1).wait_for()
    assert page.evaluate("document.activeElement.id") == "sr-input"
    # The browser logs the 503s themselves as console errors; nothing else went wrong.
    assert all("503" in error for error in recorded.console_errors), recorded.console_errors
    context.close()


def test_no_connection_at_all_shows_the_calm_message_then_recovers(page, chat_stack, recorded):
    open_chat(page, chat_stack)
    page.route("**/api/chat", lambda route: route.abort("internetdisconnected"))
    page.get_by_label("Your message").fill("hello")
    page.get_by_label("Your message").press("Enter")
    notice = page.locator(".sr-log .sr-msg--notice")
    notice.wait_for()
    assert "I can't connect right now. If you are in danger, call 999." in notice.inner_text()
    page.unroute("**/api/chat")
    before = bot_messages(page).count()
    notice.get_by_role("button", name="Try again").click()
    wait_for_answer(page, before)
    assert "computer program" in bot_messages(page).last.inner_text() or \
        "chatbot" in page.locator(".sr-log").inner_text()
    recorded.console_errors[:] = [e for e in recorded.console_errors
                                  if "ERR_INTERNET_DISCONNECTED" not in e]


# --- Accessibility and layout ----------------------------------------------------------------


def axe_violations(page) -> str:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return results.generate_snapshot() if results.violations_count else ""


def test_axe_finds_no_violations_on_the_chat_page(page, chat_stack):
    open_chat(page, chat_stack)
    assert axe_violations(page) == ""
    send(page, KNOWLEDGE_QUESTION)
    page.wait_for_selector(".sr-sources a")
    assert axe_violations(page) == ""


def test_axe_finds_no_violations_on_the_privacy_page(page, chat_stack):
    page.goto(chat_stack.url + "/privacy")
    assert "About this service and your privacy" in page.locator("h1").inner_text()
    assert axe_violations(page) == ""
    screenshot(page, "privacy-1280")


def test_axe_finds_no_violations_on_the_staff_sign_in_page(browser, chat_stack):
    if not (PROJECT_ROOT / "bot" / "web" / "staff").is_dir():
        pytest.skip("bot/web/staff does not exist yet")
    context, page = new_page(browser, Recorded())
    reply = page.goto(chat_stack.url + "/staff/login")
    assert reply.status == 200
    assert axe_violations(page) == ""
    context.close()


def test_keyboard_only_skip_links_visible_focus_and_choices(page, chat_stack):
    open_chat(page, chat_stack)
    page.keyboard.press("Tab")
    first = page.evaluate("[document.activeElement.textContent, document.activeElement.href]")
    assert first == ["Exit this page", chat_stack.exit_url]
    assert page.locator(".sr-skip-link").first.is_visible()  # shown while focused
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Tab on to the first choice; its focus is clearly visible.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.payload || ''"):
            break
    assert page.evaluate("document.activeElement.textContent") == "Something happened to me"
    style = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.backgroundColor]; })()"
    )
    assert style[0] == "solid" and float(style[1].rstrip("px")) >= 3
    assert style[2] == "rgb(255, 221, 0)"
    before = bot_messages(page).count()
    page.keyboard.press("Enter")
    wait_for_answer(page, before)
    assert page.evaluate("document.activeElement.id") == "sr-input"


def test_new_messages_are_announced_politely(page, chat_stack):
    open_chat(page, chat_stack)
    log = page.locator("[data-sr-log]")
    assert log.get_attribute("aria-live") == "polite"
    assert log.get_attribute("role") == "log"
    send(page, "hello")
    # The answer was added inside the live region (not replaced around it).
    assert log.locator(".sr-msg--bot").count() >= 1
    assert page.locator("[data-sr-typing]").get_attribute("role") == "status"


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def exit_button_on_screen(page) -> bool:
    box = page.locator(".sr-header .sr-exit-button").bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 120


@pytest.mark.parametrize(
    "name, viewport, scale",
    [("360", {"width": 360, "height": 740}, 1),
     ("1280", {"width": 1280, "height": 800}, 1),
     # 200% zoom of a 1280x800 window: half the CSS pixels, twice the device pixels.
     ("1280-zoom-200", {"width": 640, "height": 400}, 2),
     # 400% zoom (WCAG reflow): 320 CSS pixels wide.
     ("1280-zoom-400", {"width": 320, "height": 256}, 4)],
)
def test_layout_fits_without_sideways_scrolling_and_exit_stays_on_screen(
    browser, chat_stack, recorded, name, viewport, scale
):
    context, page = new_page(browser, recorded, viewport=viewport, device_scale_factor=scale)
    open_chat(page, chat_stack)
    assert no_horizontal_scroll(page)
    assert exit_button_on_screen(page)
    screenshot(page, f"chat-{name}")
    if name in ("360", "1280"):
        screenshot(page, f"chat-{name}-full", full_page=True)
    send(page, KNOWLEDGE_QUESTION)
    page.wait_for_selector(".sr-sources a")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    assert no_horizontal_scroll(page)
    assert exit_button_on_screen(page), "the exit button scrolled away"
    context.close()


def test_reduced_motion_stops_the_typing_animation(browser, chat_stack, recorded):
    probe = (
        "(() => { const t = document.querySelector('[data-sr-typing]');"
        " const d = document.createElement('span'); d.className = 'sr-typing-dots';"
        " const s = document.createElement('span'); d.appendChild(s); t.appendChild(d);"
        " const name = getComputedStyle(s).animationName; d.remove(); return name; })()"
    )
    for motion, expected_none in (("reduce", True), ("no-preference", False)):
        context, page = new_page(browser, recorded, reduced_motion=motion)
        open_chat(page, chat_stack)
        assert (page.evaluate(probe) == "none") is expected_none
        context.close()


# --- The widget on another website -------------------------------------------------------------


def test_widget_on_another_site_opens_the_same_chat_and_exits(browser, chat_stack, recorded):
    for width, height in ((1280, 800), (360, 740)):
        context, page = new_page(browser, recorded, viewport={"width": width, "height": height})
        page.goto(chat_stack.host.origin + "/")
        launcher = page.get_by_role("button", name="Get help safely")
        launcher.wait_for()
        assert launcher.is_visible()
        launcher.click()
        panel = page.get_by_role("dialog", name="Get help safely")
        panel.wait_for()
        assert page.evaluate(
            "document.querySelector('[data-safe-report-widget]').shadowRoot"
            ".activeElement.id") == "sr-panel-title"
        assert "If you are in danger now, call 999" in panel.inner_text()
        assert panel.get_by_role("link", name=re.compile("Read about your privacy")) \
            .get_attribute("href") == chat_stack.url + "/privacy"
        before = panel.locator(".sr-msg--bot").count()
        panel.get_by_role("button", name="I have a question").click()
        panel.locator(".sr-msg--bot").nth(before).wait_for()
        panel.get_by_label("Your message").fill(KNOWLEDGE_QUESTION)
        panel.get_by_label("Your message").press("Enter")
        panel.locator(".sr-sources a").first.wait_for()
        page.wait_for_timeout(300)
        screenshot(page, f"widget-{width}")
        # The conversation id is in memory only: nothing in the host site's storage.
        assert page.evaluate("sessionStorage.length + localStorage.length") == 0
        assert context.cookies() == []
        # Escape hides the panel and gives focus back to the button.
        page.keyboard.press("Escape")
        assert not panel.is_visible()
        assert launcher.is_visible()
        launcher.click()
        if width == 1280:
            errors_before = len(recorded.console_errors)
            assert axe_violations(page) == ""
            # axe-core itself sets an inline style while it checks a shadow root, which
            # the host page's CSP blocks; that is the tool's doing, not the widget's.
            during_axe = recorded.console_errors[errors_before:]
            assert all("Applying inline style" in e for e in during_axe), during_axe
            del recorded.console_errors[errors_before:]
            panel.locator(".sr-exit-button").click()
        else:
            for _ in range(3):
                page.keyboard.press("Shift")
        page.wait_for_url(chat_stack.exit_url)
        context.close()
    allowed = {chat_stack.url, chat_stack.host.origin}
    foreign = [url for url in recorded.requests if origin(url) not in allowed]
    assert foreign == [], foreign
    assert recorded.console_errors == [], recorded.console_errors


def test_widget_exit_deletes_the_conversation_on_the_server(browser, chat_stack, recorded):
    context, page = new_page(browser, recorded)
    chats = []
    page.on("request", lambda r: r.url.endswith("/api/chat") and chats.append(r.post_data_json))
    page.goto(chat_stack.host.origin + "/")
    page.get_by_role("button", name="Get help safely").click()
    panel = page.get_by_role("dialog", name="Get help safely")
    panel.get_by_label("Your message").fill("hello")
    panel.get_by_label("Your message").press("Enter")
    panel.locator(".sr-msg--bot").first.wait_for()
    sender = chats[0]["sender"]
    assert re.fullmatch(r"[0-9a-f]{32}", sender)
    assert chat_stack.wait_for_events(sender, present=True) > 0
    panel.locator(".sr-exit-button").click()
    page.wait_for_url(chat_stack.exit_url)
    assert chat_stack.wait_for_events(sender, present=False) == 0
    # The exit replaced the host page in this tab's history, as on the chat page.
    page.go_back()
    page.wait_for_load_state()
    assert not page.url.startswith(chat_stack.host.origin)
    context.close()


def test_widget_api_refuses_sites_that_are_not_allowed(chat_stack):
    reply = requests.post(
        chat_stack.url + "/api/chat", timeout=10,
        json={"sender": secrets.token_hex(16), "message": "hello"},
        headers={"Origin": "http://evil.localhost:1"},
    )
    assert reply.status_code == 403
    assert "access-control-allow-origin" not in reply.headers
