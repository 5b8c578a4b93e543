"""Fuzz the running web app with schemathesis, from its own OpenAPI description.

Schemathesis runs as a command from its own virtual environment (.venv-fuzz, made by
`make fuzz-venv` from tests/fuzz/requirements.txt: it needs a jsonschema newer than Rasa 3.6
allows) against the real stack (Rasa, the action server and the web app on the trained
model), reading the description from the app's /openapi.json. Settings are in
tests/fuzz/schemathesis.toml: every check (no 5xx; status codes, content types, headers and
bodies as documented; invalid input refused, valid input accepted), deterministic
generation, one worker and a bounded number of cases per operation.

Two runs:
1. every operation, as an anonymous visitor: the pages, /api/chat through to Rasa, the
   delete route, health, static files, and every staff route without a session;
2. the staff app signed in as an admin (session cookie; tests/fuzz/hooks.py puts the real
   CSRF token into each form and a real handoff reference into some URLs), sign-out left out.

The test fails on any failure schemathesis reports (a 500, a response that does not match the
description, ...), and on a traceback in the web app's log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
from reliability_report import (  # noqa: F401 (fixture)
    model,
    record,
    section_fixture,
    session_stack_or_own,
)

from bot.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration

_report = section_fixture("fuzz")

FUZZ_DIR = PROJECT_ROOT / "tests" / "fuzz"
SCHEMATHESIS = PROJECT_ROOT / ".venv-fuzz" / "bin" / "schemathesis"
ADMIN, ADMIN_PASSWORD = "fuzz-admin", "fuzz admin password, long enough"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def target(request, tmp_path_factory, model, knowledge_db):  # noqa: F811
    with session_stack_or_own(request, tmp_path_factory, model, knowledge_db, "fuzz") as running:
        yield running


@pytest.fixture(scope="module")
def schemathesis() -> Path:
    if not SCHEMATHESIS.exists():
        pytest.fail(f"{SCHEMATHESIS} is missing: run `make fuzz-venv` (`make test` does)")
    return SCHEMATHESIS


def web_log(target) -> str:
    path = target.log_dir / "web.log"
    return path.read_text(errors="replace") if path.exists() else ""


def run_schemathesis(schemathesis: Path, target, out: Path, *args: str,
                     env: dict[str, str] | None = None) -> dict:
    """Run `schemathesis run` against the app's /openapi.json; its JSON report, with the
    command's output added as "output"."""
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    command = [
        str(schemathesis), "--config-file", str(FUZZ_DIR / "schemathesis.toml"), "--no-color",
        "run", f"{target.web_url}/openapi.json", "--wait-for-schema", "30",
        "--report", "json", "--report-json-path", str(report), *args,
    ]
    environment = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1",
                   **(env or {})}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        environment.pop(name, None)
    started = time.monotonic()
    # cwd: schemathesis may write files (reports) where it runs; keep them out of the repo.
    result = subprocess.run(command, cwd=out, env=environment, capture_output=True, text=True,
                            timeout=600)
    output = result.stdout + result.stderr
    assert report.exists(), f"schemathesis wrote no report (exit {result.returncode}):\n{output[-6000:]}"
    data = json.loads(report.read_text())
    data["output"], data["wall"] = output, time.monotonic() - started
    data["returncode"] = result.returncode
    return data


def assert_clean(data: dict) -> None:
    summary = data["output"][-8000:]
    assert data["test_cases"]["with_failures"] == 0 and not data["failures"], summary
    assert not data["errors"] and data["test_cases"]["errored"] == 0, summary
    assert data["returncode"] == 0 and data["exit_code"] == 0, summary
    assert data["complete"], summary
    assert data["operations"]["errored"] == 0, summary


def sign_in(target) -> tuple[requests.Session, str]:
    """A signed-in admin session and its CSRF token, as a browser would get them."""
    staff = requests.Session()
    staff.trust_env = False
    page = staff.get(f"{target.web_url}/staff/login", timeout=30)
    reply = staff.post(f"{target.web_url}/staff/login", allow_redirects=False, timeout=60, data={
        "username": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": CSRF.search(page.text)[1]})
    assert reply.status_code == 303, reply.text[:500]
    queue = staff.get(f"{target.web_url}/staff/", timeout=30)
    assert queue.status_code == 200
    return staff, CSRF.search(queue.text)[1]


def seed_handoffs(target) -> list[str]:
    """An admin account and two handoffs in the stack's own stores."""
    from bot.handoff import HandoffRequest, HandoffStore
    from bot.web.staff.accounts import StaffAccounts

    store = HandoffStore(settings=target.settings)
    try:
        if ADMIN not in {u["username"] for u in StaffAccounts(store, target.settings).list_users()}:
            StaffAccounts(store, target.settings).add_user(ADMIN, ADMIN_PASSWORD, "admin")
        return [store.create(HandoffRequest(
            nation="wales" if i else "scotland",
            situation={"role": "victim", "what_happened": "hate_crime", "danger_now": "safe",
                       "immigration_fear": True, "service": ["police"]},
            articles_shown=["hate-crime-reporting"],
            transcript=[{"speaker": "person", "text": "Someone shouted at me in the street"},
                        {"speaker": "bot", "text": "I'm sorry that happened."}],
            contact_method="phone", contact_detail="07700 900123", safe_times="evenings",
            may_leave_message="no", may_say_who="yes",
        )) for i in range(2)]
    finally:
        store.close()


def audit_actions(target, reference: str) -> set[str]:
    from bot.handoff import HandoffStore

    store = HandoffStore(settings=target.settings)
    try:
        return {row["action"] for row in store.audit(10_000) if row["reference"] == reference}
    finally:
        store.close()


def describe(data: dict) -> str:
    tested = data["operations"]["tested"]
    phases = ", ".join(name for name, phase in data["phases"].items()
                       if phase["status"] != "skip")
    return (f"{tested} operations, phases {phases}; {data['test_cases']['generated']} cases, "
            f"0 failures, 0 errors ({data['running_time']:.0f}s)")


def test_schemathesis_every_operation_anonymous(schemathesis, target, tmp_path):
    """Every operation in bot/web/openapi.yml, with /api/chat answered by the real Rasa."""
    mark = len(web_log(target))
    data = run_schemathesis(schemathesis, target, tmp_path / "anonymous")
    assert_clean(data)
    from bot.web.app import openapi_description

    spec = openapi_description()
    operations = sum(1 for item in spec["paths"].values() for method in item
                     if method in {"get", "post", "delete", "options"})
    # Schemathesis leaves out the operation that serves the description it reads.
    assert data["operations"]["tested"] == operations - 1, data["output"][-3000:]
    assert "Traceback" not in web_log(target)[mark:]
    # Valid messages went through to Rasa and came back (2xx): the chat was really fuzzed.
    turns = sum(phase["accepted"] for phase in data["valid_rates"]["POST /api/chat"].values())
    assert turns >= 20, data["valid_rates"]["POST /api/chat"]
    record("fuzz", "schemathesis, every operation, anonymous",
           "every operation in bot/web/openapi.yml but GET /openapi.json, which it reads: "
           "pages, widget, "
           "articles, /api/chat through to the real Rasa stack, DELETE /api/conversation, CORS "
           "preflights, health, static files, and every /staff route without a session; all "
           "checks (no 5xx, documented status codes, content types, headers and response "
           "schemas, invalid input refused, valid input accepted, undocumented methods 405 "
           "with Allow); deterministic, max 40 cases per operation (60 for /api/chat), "
           "string edges from tests/fuzz/schemathesis.toml",
           data["test_cases"]["generated"],
           f"ok: {describe(data)}; {turns} valid messages answered by Rasa through /api/chat")


def test_schemathesis_staff_signed_in(schemathesis, target, tmp_path):
    """The staff app as a signed-in admin: forms with the real CSRF token, real references."""
    reference, deletable = seed_handoffs(target)
    staff, csrf = sign_in(target)
    login_page = requests.get(f"{target.web_url}/staff/login", timeout=30)
    login_csrf = CSRF.search(login_page.text)[1]
    cookie = (f"sr_staff={staff.cookies['sr_staff']}; "
              f"sr_staff_login={login_page.cookies['sr_staff_login']}")
    mark = len(web_log(target))
    data = run_schemathesis(
        schemathesis, target, tmp_path / "staff",
        "--include-path-regex", "^/staff/", "--exclude-operation-id", "staffSignOut",
        "--header", f"Cookie: {cookie}", "--generation-with-security-parameters", "false",
        env={"SCHEMATHESIS_HOOKS": str(FUZZ_DIR / "hooks.py"), "SR_FUZZ_CSRF": csrf,
             "SR_FUZZ_LOGIN_CSRF": login_csrf, "SR_FUZZ_REF": reference,
             "SR_FUZZ_DELETE_REF": deletable},
    )
    assert_clean(data)
    assert "Traceback" not in web_log(target)[mark:]
    # The fuzz got past sign-in and CSRF to the work itself, and the session lasted.
    reached = audit_actions(target, reference)
    assert {"view", "reveal", "export", "note", "status"} <= reached, reached
    assert "delete" in audit_actions(target, deletable)
    assert staff.get(f"{target.web_url}/staff/", timeout=30).status_code == 200
    record("fuzz", "schemathesis, staff app signed in (admin)",
           "every /staff operation but sign-out, with an admin session cookie; "
           "tests/fuzz/hooks.py puts the session's CSRF token into every form and a real "
           "handoff reference into half of the URLs; same checks and bounds as above",
           data["test_cases"]["generated"],
           "ok: " + describe(data) + "; audited actions reached on the real handoff: "
           + ", ".join(sorted(reached)) + ", and a delete. Found and fixed on the way: "
           "GET /staff/?to=9999-12-31 was a 500 (date overflow), 405s lost their Allow header")
