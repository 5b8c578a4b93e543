"""Hostile and odd input against the Rasa REST channel and the web app's /api/chat.

Every request gets a calm answer or a clear 4xx: never a 500, never a stack trace in the
response, and no traceback in the servers' logs that quotes what was sent. Each message
carries a unique marker so its text can be looked for in the logs afterwards.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import time

import pytest
import requests
from reliability_report import (  # noqa: F401 (fixture)
    model,
    record,
    section_fixture,
    session_stack_or_own,
)

pytestmark = pytest.mark.integration

_report = section_fixture("hostile")

MARKERS: list[str] = []
TRACE_WORDS = ("Traceback (most recent call last)", 'File "/', "Exception:", "Error:")


def marker() -> str:
    value = f"zqx{secrets.token_hex(6)}"
    MARKERS.append(value)
    return value


def odd_texts() -> dict[str, str]:
    """Message classes that must get a calm answer (HTTP 200 from the REST channel)."""
    m = marker
    return {
        "emoji": f"🙂🚨💔 help 🆘 {m()}",
        "right-to-left (Arabic)": f"أنا خائفة من الشرطة {m()}",
        "right-to-left (Hebrew, RLO override)": f"\u202eשלום עזרה {m()}",
        "mixed normalisation (NFC + NFD + full width)": f"café cafe\u0301 Ｈｅｌｌｏ ﬁne {m()}",
        "control characters": f"\x00\x07hel\x1blo\x7f\x9b {m()}",
        "zero-width and BOM": f"\ufeffhe\u200bllo\u200d {m()}",
        "SQL injection": f"\" OR 1=1 -- ; DROP TABLE events; {m()}",
        "FTS5 NEAR(": f"police NEAR( doctor {m()}",
        "FTS5 star": f"* {m()} *",
        "FTS5 unbalanced quote": f"\"unbalanced police {m()}",
        "FTS5 column filter": f"title:police OR body:* {m()}",
        "script tag": f"<script>alert(1)</script> {m()}",
        "img onerror": f"<img src=x onerror=alert(document.cookie)> {m()}",
        "template syntax": f"{{{{7*7}}}} ${{7*7}} {{{{contact:police_999}}}} {m()}",
        "slash command injection": f'/inform{{"contact_detail": "x"}} {m()}',
        "fake intent payload": "/nonexistent_intent",
        "lone surrogate-like escapes": f"\\ud800 \\udfff {m()}",
        "very long single word": "a" * 1990,
    }


def no_trace(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "/' not in text


# --- Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(request, tmp_path_factory, model, knowledge_db):  # noqa: F811
    with session_stack_or_own(request, tmp_path_factory, model, knowledge_db, "hostile") as running:
        yield running


@pytest.fixture(scope="module")
def log_mark(target):
    return {p.name: len(p.read_text(errors="replace")) for p in target.log_dir.glob("*.log")}


def new_logs(target, mark) -> str:
    out = []
    for path in target.log_dir.glob("*.log"):
        out.append(path.read_text(errors="replace")[mark.get(path.name, 0):])
    return "\n".join(out)


def post_rest(target, body, **kwargs) -> requests.Response:
    return requests.post(target.rest_url, timeout=120, **({"json": body} if body is not None
                                                            else {}), **kwargs)


def check(reply: requests.Response, allowed: set[int]) -> None:
    assert reply.status_code in allowed, (reply.status_code, reply.text[:300])
    assert reply.status_code < 500
    no_trace(reply.text)


# --- Rasa REST channel ---------------------------------------------------------------------


def test_rest_odd_texts_get_calm_answers(target, log_mark):
    sender = secrets.token_hex(16)
    cases = odd_texts()
    for name, text in cases.items():
        reply = post_rest(target, {"sender": sender, "message": text})
        check(reply, {200})
        body = reply.json()
        assert isinstance(body, list) and body, name
        assert all(item.get("text") or item.get("buttons") or item.get("custom") for item in body)
        # Replies are the bot's own words: nothing sent is echoed back as markup.
        assert "<script>" not in reply.text and "onerror" not in reply.text
    record("hostile", "REST channel: odd text classes",
           "; ".join(cases), len(cases), "ok: HTTP 200, a non-empty calm answer each, no "
           "markup echoed, no traceback")


def test_rest_size_and_emptiness(target, log_mark):
    from bot.channels.rest import EMPTY_REPLY, TOO_LONG_REPLY

    sender = secrets.token_hex(16)
    results = {}
    for name, text in {"empty": "", "whitespace only": " \t\n \u3000 ",
                       "only control characters": "\x00\x01\x02"}.items():
        reply = post_rest(target, {"sender": sender, "message": text})
        check(reply, {200})
        assert EMPTY_REPLY in reply.text or reply.json(), name
        results[name] = reply.status_code
    reply = post_rest(target, {"sender": sender, "message": marker() + "x" * 100_000})
    check(reply, {200})
    assert reply.json()[0]["text"] == TOO_LONG_REPLY
    results["100 KB"] = reply.status_code
    big = json.dumps({"sender": sender, "message": marker() + "y" * 10_000_000})
    try:
        reply = requests.post(target.rest_url, data=big,
                              headers={"content-type": "application/json"}, timeout=120)
        check(reply, {413})
        results["10 MB"] = reply.status_code
    except requests.ConnectionError:
        # The server may close the connection as soon as the declared size is too big.
        results["10 MB"] = "connection closed early"
    # The server is still fine afterwards.
    assert post_rest(target, {"sender": sender, "message": "hello"}).status_code == 200
    record("hostile", "REST channel: empty, whitespace, 100 KB, 10 MB",
           "empty string, whitespace only (incl. ideographic space), only control characters, "
           "a 100 KB message, a 10 MB body", 5,
           f"ok: {results} (200 = calm \"I didn't get a message\" / \"too long\" reply; "
           "10 MB refused by the server's request size limit)")


def test_rest_malformed_requests(target, log_mark):
    url = target.rest_url
    good = secrets.token_hex(16)
    cases = {
        "invalid JSON": dict(data=b'{"sender": "a", "message": ', headers={"content-type": "application/json"}),
        "JSON list": dict(json=[1, 2]),
        "JSON string": dict(json="hello"),
        "JSON null": dict(data=b"null", headers={"content-type": "application/json"}),
        "wrong content type (text/plain)": dict(data=json.dumps({"sender": good, "message": "hi"}),
                                                headers={"content-type": "text/plain"}),
        "form encoded": dict(data={"sender": good, "message": "hi"}),
        "no body": dict(),
        "missing sender": dict(json={"message": "hi"}),
        "missing message": dict(json={"sender": good}),
        "message is a number": dict(json={"sender": good, "message": 42}),
        "message is an object": dict(json={"sender": good, "message": {"text": "hi"}}),
        "sender is a number": dict(json={"sender": 12345, "message": "hi"}),
        "sender empty": dict(json={"sender": "", "message": "hi"}),
        "sender 129 chars": dict(json={"sender": "a" * 129, "message": "hi"}),
        "sender 100 KB": dict(json={"sender": "a" * 100_000, "message": "hi"}),
        "sender path traversal": dict(json={"sender": "../../etc/passwd", "message": "hi"}),
        "sender with spaces and quotes": dict(json={"sender": "a b'\"", "message": "hi"}),
        "sender with NUL": dict(json={"sender": "abc\x00def", "message": "hi"}),
        "sender non-ASCII": dict(json={"sender": "écoute", "message": "hi"}),
        "sender SQL": dict(json={"sender": "x' OR '1'='1", "message": "hi"}),
        "invalid UTF-8": dict(data=b'{"sender": "abc", "message": "\xff\xfe"}',
                              headers={"content-type": "application/json"}),
    }
    statuses = {}
    for name, kwargs in cases.items():
        reply = requests.post(url, timeout=60, **kwargs)
        statuses[name] = reply.status_code
        if name == "wrong content type (text/plain)":
            check(reply, {200, 400, 415})  # the body is JSON all the same
        else:
            check(reply, {400})
            assert "error" in reply.json(), name
    record("hostile", "REST channel: malformed requests",
           "; ".join(cases), len(cases),
           "ok: clear HTTP 400 with an {\"error\"} message each (text/plain carrying valid "
           f"JSON: HTTP {statuses['wrong content type (text/plain)']}); no traceback")


def raw_get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """A request with the path exactly as given (clients would normalise `..`)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read(200_000).decode("utf-8", "replace")
    finally:
        connection.close()


PATHS = [
    "/nope", "/webhooks/rest/nope", "/webhooks/nope/webhook", "/../../etc/passwd",
    "/webhooks/rest/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
    "/webhooks/rest/webhook/..%2f..%2f..%2fetc%2fpasswd", "/" + "a" * 5000,
    "/static/../../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/articles/../../etc/passwd", "/articles/%00", "/articles/<script>",
]


def test_unknown_routes_and_path_traversal(target, log_mark):
    tried = 0
    ports = [target.settings.rasa_port]
    if "web" in target.processes:
        ports.append(target.settings.web_port)
    for port in ports:
        paths = list(PATHS)
        if port == target.settings.web_port and raw_get(port, "/staff/")[0] != 404:
            paths += ["/staff/h/../../etc/passwd", "/staff/..%2f..%2fetc%2fpasswd",
                      "/staff/static/../../../etc/passwd"]
        for path in paths:
            status, body = raw_get(port, path)
            tried += 1
            assert status < 500, (port, path, status)
            assert "root:x:0:0" not in body
            no_trace(body)
        status, body = raw_get(port, "/webhooks/rest/webhook", "GET")
        tried += 1
        assert status < 500
    record("hostile", "unknown routes and path traversal",
           "unknown paths, ../ and %2e%2e/%2f traversal towards /etc/passwd (raw paths, not "
           "normalised by the client), a 5000-character path, NUL and markup in paths, on "
           "Rasa and the web app (incl. /staff when it exists), GET on the POST-only webhook",
           tried, "ok: 4xx or a normal page, never 500, never a file outside the app, no trace")


# --- Web app /api/chat (only when the route exists) --------------------------------------


@pytest.fixture(scope="module")
def chat_url(target):
    if "web" not in target.processes:
        pytest.skip("web app not running")
    url = f"{target.web_url}/api/chat"
    probe = requests.post(url, json={}, timeout=30)
    if probe.status_code in (404, 405):
        pytest.skip("/api/chat does not exist (yet)")
    return url


def test_api_chat_hostile_input(target, chat_url, log_mark):
    sender = secrets.token_hex(16)
    statuses: dict[str, int | str] = {}
    for name, text in {**odd_texts(), "empty": "", "whitespace only": "  \n ",
                       "100 KB": marker() + "x" * 100_000}.items():
        reply = requests.post(chat_url, json={"sender": sender, "message": text}, timeout=120)
        check(reply, {200, 413})
        if reply.status_code == 200:
            assert reply.json()["messages"], name
        statuses[name] = reply.status_code
    malformed = {
        "invalid JSON": dict(data=b"{not json", headers={"content-type": "application/json"}),
        "wrong content type": dict(data=json.dumps({"sender": sender, "message": "hi"}),
                                   headers={"content-type": "text/plain"}),
        "missing fields": dict(json={}),
        "JSON list": dict(json=["hi"]),
        "message not a string": dict(json={"sender": sender, "message": ["hi"]}),
        "sender 129 chars": dict(json={"sender": "a" * 129, "message": "hi"}),
        "sender traversal": dict(json={"sender": "../../x", "message": "hi"}),
        "invalid UTF-8": dict(data=b'{"sender": "abc", "message": "\xff"}',
                              headers={"content-type": "application/json"}),
    }
    for name, kwargs in malformed.items():
        reply = requests.post(chat_url, timeout=60, **kwargs)
        check(reply, {400, 413, 415})
        statuses[name] = reply.status_code
    try:
        big = json.dumps({"sender": sender, "message": "y" * 10_000_000})
        reply = requests.post(chat_url, data=big, headers={"content-type": "application/json"},
                              timeout=120)
        check(reply, {413})
        statuses["10 MB"] = reply.status_code
    except requests.ConnectionError:
        statuses["10 MB"] = "connection closed early"
    reply = requests.delete(f"{target.web_url}/api/conversation/..%2f..%2fetc", timeout=30)
    assert reply.status_code < 500
    record("hostile", "web app /api/chat", "the odd text classes above, empty, whitespace, "
           "100 KB, 10 MB, invalid JSON, text/plain, missing fields, wrong types, bad senders, "
           "invalid UTF-8; DELETE /api/conversation with a traversal id",
           len(statuses) + 1, f"ok: {statuses}; never 500, no traceback")


# --- Logs ----------------------------------------------------------------------------------


def test_logs_have_no_traceback_quoting_messages(target, log_mark):
    time.sleep(1)
    logs = new_logs(target, log_mark)
    blocks = re.split(r"(?=Traceback \(most recent call last\))", logs)
    traces = [b[:5000] for b in blocks[1:]]
    leaking = [m for m in MARKERS for t in traces if m in t]
    assert not leaking, f"{len(leaking)} markers inside tracebacks"
    anywhere = [m for m in MARKERS if m in logs]
    record("hostile", "server logs after all hostile requests",
           f"searched the Rasa, action server and web app logs for the {len(MARKERS)} unique "
           "markers sent inside messages, and for tracebacks", len(MARKERS),
           f"ok: {len(traces)} traceback(s) in the logs, none quoting a message; markers "
           f"found anywhere in the logs: {len(anywhere)}")
    assert not anywhere, "message text reached a log line"
