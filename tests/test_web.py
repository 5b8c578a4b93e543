"""bot.web over real HTTP: the chat page, the widget script, article pages and the chat API.

The web app runs in-process under uvicorn on a free port. Rasa is either a small fake
REST channel (so every reply shape and failure can be produced on demand) or a closed
port (Rasa down). The conversation store is the real SQLite store under the test's own
DATA_DIR. tests/test_browser.py drives the same app against the real stack in Chromium.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import uvicorn

from bot.settings import Settings
from bot.web.app import create_app, markdown_to_html
from bot.web.chat_api import body_limit, clean_messages
from bot.web.security import CONTENT_SECURITY_POLICY

ALLOWED_ORIGIN = "https://charity.example"
WEB_DIR = Path(__file__).resolve().parent.parent / "bot" / "web"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- A fake Rasa REST channel -------------------------------------------------------------


@dataclass
class FakeRasa:
    """POST /webhooks/rest/webhook: records each body, answers with `reply` (a list, or a
    callable taking the body), after `delay` seconds, with HTTP `status`."""

    port: int
    reply: list | Callable[[dict], list] | bytes = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    port = free_port()
    fake = FakeRasa(port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.received.append(body)
            time.sleep(fake.delay)
            reply = fake.reply(body) if callable(fake.reply) else fake.reply
            raw = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


# --- The web app under uvicorn ---------------------------------------------------------


class RunningApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings, schedule_purge=False), host="127.0.0.1", port=self.port,
            log_level="warning", ws="none", access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningApp:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, allow_redirects=False, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=60, **kwargs)

    def chat(self, sender: str, message: str, **kwargs) -> requests.Response:
        return self.post("/api/chat", json={"sender": sender, "message": message}, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return requests.delete(self.url + path, timeout=10, **kwargs)


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Callable[..., RunningApp]]:
    running: list[RunningApp] = []

    def start(**overrides) -> RunningApp:
        overrides.setdefault("rasa_port", free_port())  # nothing listens there: Rasa is down
        overrides.setdefault("widget_allowed_origins", (ALLOWED_ORIGIN,))
        app = RunningApp(replace(settings, **overrides)).__enter__()
        running.append(app)
        return app

    yield start
    for app in running:
        app.__exit__(None, None, None)


@pytest.fixture
def app(make_app, fake_rasa) -> RunningApp:
    return make_app(rasa_port=fake_rasa.port)


@pytest.fixture
def app_with_kb(make_app, fake_rasa, settings, knowledge_db) -> RunningApp:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(knowledge_db, settings.data_dir / "knowledge.db")
    return make_app(rasa_port=fake_rasa.port)


def sender() -> str:
    import secrets

    return secrets.token_hex(16)


# --- Headers on every page -------------------------------------------------------------

PUBLIC_PATHS = [
    "/", "/privacy", "/articles/emergency-help", "/widget.js", "/static/chat.js",
    "/static/chat.css", "/healthz", "/no-such-page", "/api/no-such-thing",
    "/static/no-such-file.js", "/articles/no-such-article",
]


def assert_security_headers(reply: requests.Response) -> None:
    headers = reply.headers
    csp = headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                      "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in headers


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_every_public_response_has_the_security_headers_and_no_cookie(app_with_kb, path):
    reply = app_with_kb.get(path)
    assert reply.status_code in (200, 404)
    assert_security_headers(reply)


def test_api_responses_have_the_headers_and_no_cookie_either(app, fake_rasa):
    fake_rasa.reply = [{"recipient_id": "x", "text": "Hello"}]
    for reply in (
        app.chat(sender(), "hello"),
        app.post("/api/chat", data=b"{", headers={"Content-Type": "application/json"}),
        app.delete(f"/api/conversation/{sender()}"),
        requests.options(app.url + "/api/chat", timeout=10,
                         headers={"Origin": ALLOWED_ORIGIN,
                                  "Access-Control-Request-Method": "POST"}),
    ):
        assert_security_headers(reply)


# --- The chat page -------------------------------------------------------------------------


class PageParser(HTMLParser):
    """Every tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text.append(data)


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def assert_self_contained(html: str, exit_url: str) -> None:
    page = parse(html)
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"inline style on <{tag}>"
        assert not any(name.startswith("on") for name in attrs), f"event handler on <{tag}>"
        assert tag != "style", "inline <style>"
        assert tag not in ("iframe", "img", "object", "embed"), f"<{tag}> on the page"
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), "inline or third-party script"
        for name in ("src", "href", "action"):
            value = attrs.get(name)
            if value is None:
                continue
            assert (
                value.startswith(("/", "#", "tel:", "data:,")) or value == exit_url
            ), f"<{tag} {name}={value!r}> leaves the site"


def test_chat_page_is_server_rendered_self_contained_and_says_what_it_is(make_app, fake_rasa):
    app = make_app(rasa_port=fake_rasa.port, conversation_retention_hours=36)
    reply = app.get("/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.text
    assert_self_contained(html, app.settings.exit_url)
    text = re.sub(r"\s+", " ", " ".join(parse(html).text))
    assert '<html lang="en">' in html
    assert "If you are in danger now, call 999" in text
    assert "computer program, not a person" in text
    assert "information, not legal advice" in text
    assert "I can" in text and "I cannot" in text
    # The retention period comes from settings, not from the template.
    assert "deleted after 36 hours with no activity" in text
    assert "Nothing is kept until you send a message" in text
    assert 'href="/privacy"' in html
    for title, payload in [
        ("Something happened to me", "/report_crime_victim"),
        ("I saw something happen", "/witness_crime"),
        ("I have a question", "/ask_question"),
        ("I want to talk to a person", "/request_human"),
    ]:
        assert re.search(rf'data-payload="{re.escape(payload)}"[^>]*>{re.escape(title)}<', html)
    # Quick exit: a link to the exit URL (works without JavaScript too) and a skip link.
    assert html.count(f'href="{app.settings.exit_url}"') >= 2
    assert "Exit this page" in text
    assert 'href="#main"' in html and 'id="main"' in html
    # The conversation is an aria-live region; the input has a label.
    assert 'aria-live="polite"' in html
    assert '<label class="sr-label" for="sr-input">' in html
    assert f'maxlength="{app.settings.max_message_chars}"' in html
    assert "Delete my conversation" in text
    assert '<script src="/static/chat.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/chat.css">' in html


def test_opening_the_page_creates_no_server_data(app, fake_rasa, settings):
    for path in ("/", "/widget.js", "/static/chat.js", "/privacy"):
        app.get(path)
    assert fake_rasa.received == []
    assert not (settings.data_dir / "conversations.db").exists()


def test_exit_url_comes_from_settings_and_must_be_http(make_app, fake_rasa):
    app = make_app(rasa_port=fake_rasa.port, exit_url="https://example.org/weather")
    assert 'data-exit-url="https://example.org/weather"' in app.get("/").text
    unsafe = make_app(rasa_port=fake_rasa.port, exit_url="javascript:alert(1)")
    html = unsafe.get("/").text
    assert "javascript:" not in html
    assert 'data-exit-url="https://www.bbc.co.uk/weather"' in html


def test_scripts_never_use_html_sinks_storage_or_cookies():
    for name in ("chat.js", "widget.js"):
        code = (WEB_DIR / "static" / name).read_text()
        code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)  # comments may name them
        code = re.sub(r"(?m)^\s*//.*$|\s//\s.*$", "", code)
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                          "localStorage", "document.cookie", "eval(", "new Function"):
            assert forbidden not in code, f"{name} uses {forbidden}"
    chat = (WEB_DIR / "static" / "chat.js").read_text()
    assert "crypto.getRandomValues" in chat and "new Uint8Array(16)" in chat  # 128 bits
    assert 'method: "DELETE"' in chat and "keepalive" in chat
    assert "location.replace" in chat


def test_widget_script_bundles_the_chat_with_the_servers_settings(app):
    reply = app.get("/widget.js")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    code = reply.text
    config = json.loads(re.search(r"var SR_CONFIG = (\{.*\});\n", code).group(1))
    assert config["exitUrl"] == app.settings.exit_url
    panel = config["panelHtml"]
    assert "If you are in danger now, call" in panel
    assert 'data-payload="/request_human"' in panel
    assert "data-sr-log" in panel and "<html" not in panel
    assert_self_contained(panel, app.settings.exit_url)
    assert "function srWidget" in code and "function mountChat" in code
    assert code.strip().startswith("/*") and code.rstrip().endswith("})();")


# --- /api/chat: validation ---------------------------------------------------------------


def assert_json_error(reply: requests.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str)
    assert "Traceback" not in reply.text
    return body


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"hello"', "application/json", 400),
        (b"{}", "application/json", 400),
        (b'{"message": "hi"}', "application/json", 400),
        (b'{"sender": "abc"}', "application/json", 400),
        (b'{"sender": "abc", "message": 5}', "application/json", 400),
        (b'{"sender": "abc", "message": null}', "application/json", 400),
        (b'{"sender": "abc", "message": ["hi"]}', "application/json", 400),
        (b'{"sender": "", "message": "hi"}', "application/json", 400),
        (b'{"sender": "a b", "message": "hi"}', "application/json", 400),
        (b'{"sender": "../../etc/passwd", "message": "hi"}', "application/json", 400),
        (b'{"sender": "abc<script>", "message": "hi"}', "application/json", 400),
        (b'{"sender": 12345, "message": "hi"}', "application/json", 400),
        (json.dumps({"sender": "a" * 129, "message": "hi"}).encode(), "application/json", 400),
        (b'{"sender": "abc", "message": "hi"}', "text/plain", 415),
        (b"sender=abc&message=hi", "application/x-www-form-urlencoded", 415),
    ],
)
def test_bad_chat_requests_get_a_4xx_json_error_and_never_reach_rasa(
    app, fake_rasa, body, content_type, status
):
    reply = app.post("/api/chat", data=body, headers={"Content-Type": content_type})
    assert_json_error(reply, status)
    assert fake_rasa.received == []


def test_oversize_bodies_are_refused_with_413(app, fake_rasa):
    limit = body_limit(app.settings)
    huge = json.dumps({"sender": "abc", "message": "x" * (limit + 10)}).encode()
    assert_json_error(
        app.post("/api/chat", data=huge, headers={"Content-Type": "application/json"}), 413
    )

    def chunks():  # no Content-Length: the limit holds while reading, too
        for _ in range(limit // 1000 + 5):
            yield b"x" * 1000

    assert_json_error(
        app.post("/api/chat", data=chunks(), headers={"Content-Type": "application/json"}), 413
    )
    assert fake_rasa.received == []


def test_a_long_but_allowed_message_is_passed_on(app, fake_rasa):
    fake_rasa.reply = [{"recipient_id": "x", "text": "That message is too long for me."}]
    message = "é" * app.settings.max_message_chars
    reply = app.chat(sender(), message)
    assert reply.status_code == 200
    assert fake_rasa.received[-1]["message"] == message


def test_wrong_methods_and_unknown_routes_are_4xx_without_stack_traces(app_with_kb):
    app = app_with_kb
    cases = [
        (app.get("/api/chat"), 405),
        (app.get("/no/such/page"), 404),
        (app.get("/api/no-such-thing"), 404),
        (app.get("/articles/no-such-article"), 404),
        (app.get("/articles/..%2F..%2Fetc%2Fpasswd"), 404),
        (app.get("/articles/UPPER_case"), 404),
        (app.get("/static/../app.py"), 404),
        (app.get("/static/no-such-file.js"), 404),
        (app.post("/", data=b"x"), 405),
        (app.delete("/api/conversation/"), 404),
        (app.delete("/api/conversation/a%20b"), 400),
    ]
    for reply, status in cases:
        assert reply.status_code == status, (reply.url, reply.status_code)
        assert "Traceback" not in reply.text and 'File "' not in reply.text
    assert app.get("/api/no-such-thing").json()["error"] == "not_found"
    page = app.get("/no/such/page")
    assert "Page not found" in page.text and "999" in page.text
    assert_self_contained(page.text, app.settings.exit_url)


# --- /api/chat: answers and failures -------------------------------------------------------


def test_chat_passes_sender_and_message_and_returns_only_known_fields(app, fake_rasa):
    who = sender()
    fake_rasa.reply = [
        {"recipient_id": who, "text": "Hello.", "image": "https://evil.example/x.png"},
        {
            "recipient_id": who,
            "text": "Choose one.",
            "buttons": [
                {"title": "Yes", "payload": "/affirm", "type": "postback"},
                {"title": 5, "payload": "/deny"},
                "not a button",
            ],
            "attachment": "anything",
        },
        {
            "recipient_id": who,
            "custom": {
                "article_id": "emergency-help",
                "title": "Help in an emergency",
                "sources": [
                    {"title": "Good", "url": "https://www.gov.uk/x", "date": "2026-11-25"},
                    {"title": "Script", "url": "javascript:alert(1)", "date": "2026-11-25"},
                    {"title": "Data", "url": "data:text/html,<script>alert(1)</script>"},
                    {"url": "https://no-title.example"},
                ],
                "last_reviewed": "2026-11-25",
                "extra": "<b>dropped</b>",
            },
        },
        "garbage",
    ]
    reply = app.chat(who, "hello")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert fake_rasa.received == [{"sender": who, "message": "hello"}]
    assert reply.json() == {
        "messages": [
            {"text": "Hello."},
            {"text": "Choose one.", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
            {
                "custom": {
                    "article_id": "emergency-help",
                    "title": "Help in an emergency",
                    "sources": [
                        {"title": "Good", "url": "https://www.gov.uk/x", "date": "2026-11-25"},
                        {"title": "Script", "date": "2026-11-25"},
                        {"title": "Data"},
                    ],
                    "last_reviewed": "2026-11-25",
                }
            },
        ]
    }


def test_markup_in_a_message_stays_data(app, fake_rasa):
    markup = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    fake_rasa.reply = lambda body: [{"recipient_id": body["sender"], "text": "You said " + body["message"]}]
    reply = app.chat(sender(), markup)
    assert reply.status_code == 200
    # JSON data, character for character: the page renders it with textContent.
    assert reply.json()["messages"][0]["text"] == "You said " + markup
    assert fake_rasa.received[-1]["message"] == markup


def test_rasa_down_gives_a_calm_503_with_999(make_app):
    app = make_app()  # nothing listens on the Rasa port
    reply = app.chat(sender(), "hello")
    body = assert_json_error(reply, 503)
    assert body["error"] == "unavailable"
    assert body["message"].startswith("I can't connect right now. If you are in danger, call 999.")
    assert "try again" in body["message"]
    assert reply.headers.get("retry-after") == "30"


@pytest.mark.parametrize("status, raw", [(500, b"<html>Internal Server Error</html>"),
                                         (502, b""), (200, b"not json")])
def test_rasa_answering_garbage_is_a_calm_503_not_a_500(app, fake_rasa, status, raw):
    fake_rasa.status, fake_rasa.reply = status, raw
    reply = app.chat(sender(), "hello")
    assert reply.status_code in (503, 200)
    if reply.status_code == 503:
        assert "999" in reply.json()["message"]
    else:
        assert reply.json() == {"messages": []}


def test_rasas_own_calm_503_reply_is_passed_on(app, fake_rasa):
    fake_rasa.status = 503
    fake_rasa.reply = [{"recipient_id": "x", "text": "Sorry, something went wrong on our side. "
                                                     "If you are in danger now, call 999."}]
    reply = app.chat(sender(), "hello")
    assert reply.status_code == 503
    body = reply.json()
    assert body["messages"][0]["text"].startswith("Sorry, something went wrong")
    assert "999" in body["message"]


def test_rasa_refusing_a_message_is_a_400_json(app, fake_rasa):
    fake_rasa.status, fake_rasa.reply = 400, {"error": "bad"}
    assert_json_error(app.chat(sender(), "hello"), 400)


# --- DELETE /api/conversation/{sender}: the real SQLite store ------------------------------


def save_conversation(who: str, *texts: str) -> None:
    """Write a conversation the way Rasa does: through the project's tracker store."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.tracker_store import RedactingSQLTrackerStore

    domain = Domain.from_yaml('version: "3.1"\nintents: [greet]\n')
    store = RedactingSQLTrackerStore(domain=domain)
    tracker = DialogueStateTracker(who, domain.slots)
    tracker.update(ActionExecuted("action_listen"))
    for text in texts:
        tracker.update(UserUttered(text, intent={"name": "greet", "confidence": 0.9}))
        tracker.update(BotUttered("I hear you."))
        tracker.update(ActionExecuted("action_listen"))
    asyncio.run(store.save(tracker))


def count_events(settings: Settings, who: str) -> int:
    from bot.tracker_store import ConversationStore

    return ConversationStore(settings.tracker_url).count_events(who)


def test_delete_removes_the_conversation_from_the_sqlite_store_at_once(app, settings):
    mine, theirs = sender(), sender()
    save_conversation(mine, "my husband hits me", "will they deport me")
    save_conversation(theirs, "hello")
    assert count_events(settings, mine) > 0

    reply = app.delete(f"/api/conversation/{mine}")
    assert reply.status_code == 204 and reply.content == b""
    assert count_events(settings, mine) == 0
    assert count_events(settings, theirs) > 0  # nobody else's
    # The text is gone from the files too (secure_delete + WAL checkpoint).
    on_disk = b"".join(p.read_bytes() for p in settings.data_dir.glob("conversations.db*"))
    assert b"will they deport me" not in on_disk
    # Deleting again, or a conversation that never existed, is fine.
    assert app.delete(f"/api/conversation/{mine}").status_code == 204
    assert app.delete(f"/api/conversation/{sender()}").status_code == 204


@pytest.mark.parametrize("bad", ["a%20b", "a.b", "x" * 129, "%3Cscript%3E"])
def test_delete_checks_the_sender_format(app, bad):
    assert_json_error(app.delete(f"/api/conversation/{bad}"), 400)


def test_a_conversation_deleted_while_rasa_is_answering_stays_deleted(app, fake_rasa, settings):
    """Rasa saves the turn after answering; a DELETE that arrived meanwhile must win."""
    who = sender()

    def answer_and_save(body):
        save_conversation(body["sender"], body["message"])  # what Rasa writes for the turn
        return [{"recipient_id": body["sender"], "text": "I hear you."}]

    fake_rasa.reply, fake_rasa.delay = answer_and_save, 1.5
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(reply=app.chat(who, "hello")))
    thread.start()
    time.sleep(0.5)
    assert app.delete(f"/api/conversation/{who}").status_code == 204
    thread.join(timeout=30)
    assert result["reply"].status_code == 410
    assert count_events(settings, who) == 0


# --- CORS for the widget: exact origins only ------------------------------------------------


def preflight(app: RunningApp, path: str, origin: str, method: str = "POST") -> requests.Response:
    return requests.options(
        app.url + path, timeout=10,
        headers={"Origin": origin, "Access-Control-Request-Method": method,
                 "Access-Control-Request-Headers": "content-type"},
    )


def test_cors_is_for_allowlisted_origins_only(app, fake_rasa):
    fake_rasa.reply = [{"recipient_id": "x", "text": "Hello"}]
    ok = preflight(app, "/api/chat", ALLOWED_ORIGIN)
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert ok.headers["access-control-allow-headers"] == "content-type"
    assert "access-control-allow-credentials" not in ok.headers
    delete = preflight(app, f"/api/conversation/{sender()}", ALLOWED_ORIGIN, "DELETE")
    assert delete.status_code == 204 and "DELETE" in delete.headers["access-control-allow-methods"]

    chat = app.chat(sender(), "hi", headers={"Origin": ALLOWED_ORIGIN})
    assert chat.status_code == 200
    assert chat.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "Origin" in chat.headers["vary"]

    for other in ("https://evil.example", ALLOWED_ORIGIN + "/", ALLOWED_ORIGIN + ".evil.example",
                  "http://charity.example", "https://CHARITY.example", "null"):
        refused = preflight(app, "/api/chat", other)
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        posted = app.chat(sender(), "hi", headers={"Origin": other})
        assert_json_error(posted, 403)
        assert "access-control-allow-origin" not in posted.headers
        assert app.delete(f"/api/conversation/{sender()}", headers={"Origin": other}).status_code == 403
    assert len(fake_rasa.received) == 1


def test_the_page_itself_is_same_origin_and_needs_no_cors(app, fake_rasa):
    fake_rasa.reply = [{"recipient_id": "x", "text": "Hello"}]
    reply = app.chat(sender(), "hi", headers={"Origin": app.url})
    assert reply.status_code == 200
    assert "access-control-allow-origin" not in reply.headers


def test_the_page_behind_a_proxy_that_rewrites_host_is_still_same_origin(app, fake_rasa):
    fake_rasa.reply = [{"recipient_id": "x", "text": "Hello"}]
    reply = app.chat(sender(), "hi", headers={"Origin": "https://help.example.org",
                                              "Sec-Fetch-Site": "same-origin"})
    assert reply.status_code == 200
    assert "access-control-allow-origin" not in reply.headers
    cross = app.chat(sender(), "hi", headers={"Origin": "https://help.example.org",
                                              "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403


def test_preflight_refuses_headers_it_does_not_need(app):
    reply = requests.options(
        app.url + "/api/chat", timeout=10,
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type, authorization"},
    )
    assert reply.status_code == 403


# --- Article pages ---------------------------------------------------------------------------


def test_privacy_page_renders_the_knowledge_base_article(app_with_kb):
    reply = app_with_kb.get("/privacy")
    assert reply.status_code == 200
    html = reply.text
    assert_self_contained(
        re.sub(r'<a href="https://[^"]+" rel="noreferrer">', "<a>", html),  # its sources
        app_with_kb.settings.exit_url,
    )
    text = re.sub(r"\s+", " ", " ".join(parse(html).text))
    assert "About this service and your privacy" in text
    assert "deletes your conversation after 24 hours" in text  # {{setting:...}} filled in
    assert "{{" not in html
    assert "Staying safe online" in text
    assert 'href="https://design-system.service.gov.uk/components/exit-this-page/"' in html
    assert "Checked 25 November 2026" in text
    assert "information, not legal advice" in text
    # Internal article links go to the article pages; numbers are tap-to-call.
    assert 'href="/articles/liberty-advice-line"' in html
    assert 'href="tel:999"' in html
    assert "Exit this page" in text


def test_other_articles_render_too(app_with_kb):
    reply = app_with_kb.get("/articles/domestic-abuse-immigration-threats")
    assert reply.status_code == 200
    assert "<h1" in reply.text and "Sources" in reply.text


def test_privacy_page_without_a_knowledge_base_is_calm_and_short(app, settings):
    assert not (settings.data_dir / "knowledge.db").exists()
    reply = app.get("/privacy")
    assert reply.status_code == 200
    text = " ".join(parse(reply.text).text)
    assert "computer program" in text and "24 hours" in text and "999" in text
    other = app.get("/articles/emergency-help")
    assert other.status_code == 503 and "999" in other.text


def test_markdown_subset_escapes_everything_else():
    html = str(markdown_to_html(
        "## Title <b>x</b>\n\nText with <script>alert(1)</script> and **bold**.\n\n"
        "- [ok](https://example.org/a) item\n- [bad](javascript:alert(1))\n"
        "- call 0808 2000 247 or 999, not 2026 or 07700 9001\n\n"
        "[internal](#article-emergency-help)"
    ))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<h2>Title &lt;b&gt;x&lt;/b&gt;</h2>" in html
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.org/a">ok</a>' in html
    assert "javascript:" not in html and "<li>bad)</li>" in html  # shown as text
    assert '<a href="tel:08082000247">0808 2000 247</a>' in html
    assert '<a href="tel:999">999</a>' in html
    assert "tel:2026" not in html and "tel:077009001" not in html
    assert '<a href="/articles/emergency-help">internal</a>' in html


def test_clean_messages_drops_anything_unexpected():
    assert clean_messages(None) == []
    assert clean_messages({"text": "x"}) == []
    assert clean_messages([{"text": ""}, {"text": None}, {"buttons": []}]) == []
    assert len(clean_messages([{"text": "x"}] * 100)) == 20
