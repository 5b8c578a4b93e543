"""The staff review app at /staff: the real Starlette app, mounted as the web app mounts it,
through TestClient, and once through a real uvicorn server on a free port. The accounts,
sessions and handoffs live on SQLite and (marked `services`) on a real PostgreSQL."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from bot.handoff import HandoffRequest, HandoffStore
from bot.settings import load_settings
from bot.web.security import SecurityHeadersMiddleware
from bot.web.staff import create_staff_app
from bot.web.staff.accounts import StaffAccounts, token_hash
from tests.conftest import database_bytes, table_columns

KEY = Fernet.generate_key().decode()
PHONE = "07700 900123"
STAFF_PASSWORD = "staff password long enough"
ADMIN_PASSWORD = "admin password long enough"
XSS = "<script>alert('x')</script>"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


class Clock:
    def __init__(self) -> None:
        # Nine in the morning, so that a test that advances an hour never crosses midnight
        # (the date filters count "today").
        self.now = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Staff:
    """The mounted app, its store and accounts, and helpers to sign in."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 hasher: PasswordHasher = FAST_HASHER, store_url: str = "") -> None:
        monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("HANDOFF_DATABASE_URL", store_url)
        monkeypatch.setenv("SAFE_REPORT_ENCRYPTION_KEY", KEY)
        monkeypatch.setenv("STAFF_SESSION_SECRET", "test-session-secret")
        monkeypatch.setenv("STAFF_LOCKOUT_ATTEMPTS", "3")
        monkeypatch.setenv("STAFF_LOCKOUT_MINUTES", "15")
        monkeypatch.setenv("STAFF_IDLE_MINUTES", "20")
        monkeypatch.setenv("STAFF_SESSION_HOURS", "8")
        self.settings = load_settings()
        self.clock = Clock()
        self.store = HandoffStore(settings=self.settings, clock=self.clock)
        self.accounts = StaffAccounts(self.store, self.settings, hasher=hasher)
        self.accounts.add_user("alice", STAFF_PASSWORD, "staff")
        self.accounts.add_user("root", ADMIN_PASSWORD, "admin")
        self.staff_app = create_staff_app(self.settings, store=self.store, accounts=self.accounts)

        async def home(_request):
            from starlette.responses import PlainTextResponse
            return PlainTextResponse("chat")

        # As bot.web.app mounts it: behind the security-headers middleware.
        self.app = Starlette(routes=[Route("/", home), Mount("/staff", app=self.staff_app)])
        self.app.add_middleware(SecurityHeadersMiddleware)
        self.reference = self.store.create(HandoffRequest(
            nation="scotland",
            situation={"role": "witness", "what_happened": "hate_crime", "danger_now": "not_safe",
                       "immigration_fear": True, "service": ["police"]},
            articles_shown=["hate-crime-reporting"],
            transcript=[{"speaker": "person", "text": f"They shouted {XSS} at me"},
                        {"speaker": "bot", "text": "I'm sorry that happened."}],
            contact_method="phone", contact_detail=PHONE, safe_times="after 6pm",
            may_leave_message="no", may_say_who="yes",
        ))

    def client(self, **kwargs) -> TestClient:
        return TestClient(self.app, follow_redirects=False, **kwargs)

    def sign_in(self, client: TestClient, username: str = "alice",
                password: str = STAFF_PASSWORD):
        page = client.get("/staff/login")
        return client.post("/staff/login", data={
            "username": username, "password": password, "csrf_token": csrf_of(page.text)})

    def signed_in(self, username: str = "alice", password: str = STAFF_PASSWORD) -> TestClient:
        client = self.client()
        response = self.sign_in(client, username, password)
        assert response.status_code == 303, response.text
        return client

    def actions(self) -> list[tuple[str, str, str | None]]:
        return [(r["actor"], r["action"], r["reference"]) for r in self.store.audit(1000)]

    def stored_bytes(self) -> bytes:
        """Every file under DATA_DIR, and the database's files wherever they are."""
        data_dir = self.settings.data_dir
        files = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file()) \
            if data_dir.exists() else b""
        return files if self.store.dialect == "sqlite" else files + database_bytes(self.store)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def web(tmp_path, monkeypatch, store_url):
    staff = Staff(tmp_path, monkeypatch, store_url=store_url)
    yield staff
    staff.store.close()


def session_cookie(response) -> str:
    header = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sr_staff="))
    return header.split(";")[0].split("=", 1)[1]


def page_csrf(client: TestClient, path: str = "/staff/") -> str:
    return csrf_of(client.get(path).text)


def post_routes(web: Staff) -> list[str]:
    ref = web.reference
    return [f"/staff/h/{ref}/reveal", f"/staff/h/{ref}/notes", f"/staff/h/{ref}/status",
            f"/staff/h/{ref}/assign", f"/staff/h/{ref}/export", f"/staff/h/{ref}/delete",
            "/staff/logout"]


def every_route(web: Staff) -> list[tuple[str, str]]:
    """(method, path) for every route of the staff app, read from the app itself."""
    found = []
    for route in web.staff_app.routes:
        if isinstance(route, Route):
            path = "/staff" + route.path.replace("{ref}", web.reference)
            for method in sorted(route.methods - {"HEAD"}):
                found.append((method, path))
    return found


# -- access control ------------------------------------------------------------------------


def test_every_staff_route_refuses_an_anonymous_request(web):
    routes = every_route(web)
    assert len(routes) >= 12
    client = web.client()
    for method, path in routes:
        if path == "/staff/login":
            continue
        response = client.request(method, path, data={"text": "x", "status": "closed"})
        assert response.status_code == 303, (method, path)
        assert response.headers["location"] == "/staff/login", (method, path)
        as_json = client.request(method, path, headers={"accept": "application/json"})
        assert as_json.status_code == 401, (method, path)
        assert as_json.json() == {"error": "Sign in first."}
    # Paths that do not exist are not revealed either.
    assert client.get("/staff/h/AAA-AAA-AAA").status_code == 303
    assert client.get("/staff/nothing-here").status_code == 303
    assert client.get("/staff/h/x/reveal").status_code == 303
    # A made-up session cookie is no better than none.
    client.cookies.set("sr_staff", "forged-token", path="/staff")
    assert client.get("/staff/").status_code == 303
    # Only the sign-in page and the stylesheet are public.
    assert client.get("/staff/login").status_code == 200
    css = client.get("/staff/static/staff.css")
    assert css.status_code == 200 and "focus" in css.text
    # Nothing changed, nothing was shown.
    assert web.store.get(web.reference, "test")["notes"] == []
    assert web.store.get(web.reference, "test")["status"] == "new"
    assert not [a for a in web.actions() if a[1] in ("reveal", "export", "delete", "list")]


def test_post_without_a_valid_csrf_token_is_refused(web):
    client = web.signed_in("root", ADMIN_PASSWORD)
    good = page_csrf(client)
    for path in post_routes(web):
        for token in (None, "", "wrong", "é" * 43, good[:-1] + ("A" if good[-1] != "A" else "B")):
            data = {"text": "note", "status": "closed"}
            if token is not None:
                data["csrf_token"] = token
            response = client.post(path, data=data)
            assert response.status_code == 403, (path, token)
    handoff = web.store.get(web.reference, "test")
    assert handoff["notes"] == [] and handoff["status"] == "new"
    assert client.get("/staff/").status_code == 200  # still signed in: logout was refused too
    # A CSRF token from another session is not valid for this one.
    other = web.signed_in()
    assert client.post(f"/staff/h/{web.reference}/notes",
                       data={"text": "x", "csrf_token": page_csrf(other)}).status_code == 403
    # With the right token the same POST works.
    ok = client.post(f"/staff/h/{web.reference}/notes", data={"text": "x", "csrf_token": good})
    assert ok.status_code == 303


def test_sign_in_needs_the_pre_session_csrf_token(web):
    client = web.client()
    page = client.get("/staff/login")
    token = csrf_of(page.text)
    cookie = page.headers["set-cookie"]
    assert "sr_staff_login=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    creds = {"username": "alice", "password": STAFF_PASSWORD}
    assert client.post("/staff/login", data=creds).status_code == 403  # no field
    assert client.post("/staff/login", data={**creds, "csrf_token": "x"}).status_code == 403
    assert client.post("/staff/login", data={**creds, "csrf_token": "ü.1.ß"}).status_code == 403
    # Cookie and field must match, and the value must be signed by this server.
    forged = "abc." + str(int(time.time())) + "." + "0" * 64
    fresh = web.client()
    fresh.cookies.set("sr_staff_login", forged, path="/staff")
    assert fresh.post("/staff/login", data={**creds, "csrf_token": forged}).status_code == 403
    no_cookie = web.client()
    assert no_cookie.post("/staff/login", data={**creds, "csrf_token": token}).status_code == 403
    # Each refused attempt issued a fresh token; an earlier one no longer matches the cookie.
    assert client.post("/staff/login", data={**creds, "csrf_token": token}).status_code == 403
    token = csrf_of(client.get("/staff/login").text)
    assert client.post("/staff/login", data={**creds, "csrf_token": token}).status_code == 303
    assert not [a for a in web.actions() if a[1] == "sign_in_failed"]


def test_staff_user_gets_403_on_delete_and_audit(web):
    client = web.signed_in("alice")
    csrf = page_csrf(client)
    assert client.get("/staff/audit").status_code == 403
    assert client.get(f"/staff/h/{web.reference}/delete").status_code == 403
    response = client.post(f"/staff/h/{web.reference}/delete", data={"csrf_token": csrf})
    assert response.status_code == 403
    assert "Only an admin" in response.text
    assert web.store.get(web.reference, "test")["reference"] == web.reference
    assert "delete" not in [a[1] for a in web.actions()]
    assert "Delete this handoff" not in client.get(f"/staff/h/{web.reference}").text
    assert "Audit log" not in client.get("/staff/").text


# -- sign-in, lockout, sessions ------------------------------------------------------------


def test_unknown_user_and_bad_password_get_the_same_answer(web):
    client = web.client()
    unknown = web.sign_in(client, "mallory", "whatever password")
    wrong = web.sign_in(client, "alice", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    message = re.search(r'<div class="error-summary".*?</div>', wrong.text, re.S).group(0)
    assert message in unknown.text
    assert "sr_staff=" not in (wrong.headers.get("set-cookie") or "").replace("sr_staff_login", "")
    failed = [a for a in web.actions() if a[1] == "sign_in_failed"]
    assert failed == [("alice", "sign_in_failed", None), ("unknown", "sign_in_failed", None)]
    assert "mallory" not in str(web.store.audit())  # unknown usernames are not written down


def test_lockout_engages_after_n_failures_and_refuses_the_right_password(web):
    client = web.client()
    for _ in range(3):  # STAFF_LOCKOUT_ATTEMPTS=3
        assert web.sign_in(client, "alice", "wrong password!!").status_code == 401
    locked = web.sign_in(client, "alice", STAFF_PASSWORD)
    assert locked.status_code == 401
    assert client.get("/staff/").status_code == 303  # not signed in
    wrong = web.sign_in(client, "alice", "wrong password!!")
    assert re.search(r"Sign-in failed", locked.text) and wrong.text.count("Sign-in failed") == 1
    actions = [a[1] for a in reversed(web.actions())]
    assert actions == ["sign_in_failed"] * 3 + ["lockout", "sign_in_failed", "sign_in_failed"]
    assert [r["detail"] for r in web.store.audit(2)] == ["account locked", "account locked"]
    # Other accounts are not affected.
    assert web.sign_in(web.client(), "root", ADMIN_PASSWORD).status_code == 303
    # After STAFF_LOCKOUT_MINUTES the right password works again.
    web.clock.advance(minutes=14)
    assert web.sign_in(client, "alice", STAFF_PASSWORD).status_code == 401
    web.clock.advance(minutes=2)
    assert web.sign_in(client, "alice", STAFF_PASSWORD).status_code == 303
    assert client.get("/staff/").status_code == 200
    assert web.actions()[:2] == [("alice", "list", None), ("alice", "sign_in", None)]


def test_session_cookie_and_token_storage(web):
    client = web.client()
    response = web.sign_in(client)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sr_staff="))
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "httponly" in attributes and "samesite=strict" in attributes
    assert "path=/staff" in attributes and "secure" not in attributes  # plain http here
    rows = web.store.query("SELECT token_hash FROM staff_sessions")
    assert [r["token_hash"] for r in rows] == [token_hash(token)]
    assert token.encode() not in web.stored_bytes()

    https = web.client(base_url="https://testserver")
    secure = web.sign_in(https)
    secure_cookie = next(c for c in secure.headers.get_list("set-cookie")
                         if c.startswith("sr_staff="))
    assert "secure" in [a.strip().lower() for a in secure_cookie.split(";")]


def test_new_token_on_each_sign_in_and_logout_deletes_the_session(web):
    # A token planted before sign-in (session fixation) is never adopted.
    client = web.client()
    login = client.get("/staff/login")
    client.cookies.set("sr_staff", "planted-by-someone-else", path="/staff")
    response = client.post("/staff/login", data={
        "username": "alice", "password": STAFF_PASSWORD, "csrf_token": csrf_of(login.text)})
    first = session_cookie(response)
    assert first and first != "planted-by-someone-else"
    # Signing in again while signed in replaces the old session with a new token.
    again = web.client()
    login = again.get("/staff/login")
    again.cookies.set("sr_staff", first, path="/staff")
    response = again.post("/staff/login", data={
        "username": "alice", "password": STAFF_PASSWORD, "csrf_token": csrf_of(login.text)})
    second = session_cookie(response)
    assert second != first
    hashes = {r["token_hash"] for r in web.store.query("SELECT token_hash FROM staff_sessions")}
    assert hashes == {token_hash(second)}
    stale = web.client()
    stale.cookies.set("sr_staff", first, path="/staff")
    assert stale.get("/staff/").status_code == 303  # the old token is dead
    client = web.client()
    client.cookies.set("sr_staff", second, path="/staff")
    assert client.get("/staff/").status_code == 200

    response = client.post("/staff/logout", data={"csrf_token": page_csrf(client)})
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/login")
    assert not web.store.query("SELECT 1 FROM staff_sessions")
    replay = web.client()
    replay.cookies.set("sr_staff", second, path="/staff")
    assert replay.get("/staff/").status_code == 303


def test_idle_expiry(web):
    client = web.signed_in()
    web.clock.advance(minutes=19)
    assert client.get("/staff/").status_code == 200  # activity resets the idle timer
    web.clock.advance(minutes=19)
    assert client.get("/staff/").status_code == 200
    web.clock.advance(minutes=21)
    expired = client.get("/staff/")
    assert expired.status_code == 303 and expired.headers["location"] == "/staff/login?expired=1"
    assert not web.store.query("SELECT 1 FROM staff_sessions")
    assert "signed out" in client.get("/staff/login?expired=1").text


def test_absolute_expiry(web):
    client = web.signed_in()
    for _ in range(8 * 4):  # active every 15 minutes for 8 hours
        web.clock.advance(minutes=15)
        response = client.get("/staff/")
    assert response.status_code == 200
    web.clock.advance(minutes=1)
    assert client.get("/staff/").status_code == 303


def test_disabling_a_user_ends_their_sessions(web):
    client = web.signed_in()
    web.accounts.disable_user("alice")
    assert client.get("/staff/").status_code == 303
    assert web.sign_in(web.client()).status_code == 401


# -- pages ---------------------------------------------------------------------------------


def test_queue_filters_counts_and_pagination(web):
    for i in range(55):
        web.clock.advance(minutes=1)
        web.store.create(HandoffRequest(
            nation="england-wales" if i % 2 else "northern-ireland",
            situation={"what_happened": "assault" if i % 3 else "modern_slavery"},
            contact_method="none"))
    client = web.signed_in()
    page1 = client.get("/staff/")
    assert page1.status_code == 200
    assert page1.text.count('class="reference"') == 50
    assert re.search(r'<span class="count">56</span> New', page1.text)
    assert 'rel="next"' in page1.text and 'rel="prev"' not in page1.text
    page2 = client.get("/staff/?page=2")
    assert page2.text.count('class="reference"') == 6 and 'rel="prev"' in page2.text
    assert web.reference in page2.text  # the oldest handoff is last

    scotland = client.get("/staff/?nation=scotland")
    assert scotland.text.count('class="reference"') == 1 and web.reference in scotland.text
    slavery = client.get("/staff/?situation=modern_slavery&nation=northern-ireland")
    assert slavery.text.count('class="reference"') == 10
    assert client.get("/staff/?status=closed").text.count('class="reference"') == 0
    today = web.clock.now.date().isoformat()
    dated = client.get(f"/staff/?from={today}&to={today}")
    assert dated.text.count('class="reference"') == 50
    assert client.get("/staff/?from=2000-01-01&to=2000-01-02").text.count(
        'class="reference"') == 0
    junk = client.get("/staff/?status=<x>&nation=%00&from=yesterday&page=-4")
    assert junk.status_code == 200 and "<x>" not in junk.text
    # The first and last dates there are (the schemathesis fuzz found "to=9999-12-31" a 500).
    edges = client.get("/staff/?from=0001-01-01&to=9999-12-31")
    assert edges.status_code == 200 and edges.text.count('class="reference"') == 50
    assert ("alice", "list", None) in web.actions()


def test_handoff_page_shows_plain_words_and_masks_the_detail(web):
    client = web.signed_in()
    page = client.get(f"/staff/h/{web.reference}")
    assert page.status_code == 200
    for words in ("They saw it happen (a witness)", "Hate crime", "NOT safe now", "Scotland",
                  "the police", "hate-crime-reporting", "Phone call", "after 6pm",
                  "do not leave a message", "ending 123"):
        assert words in page.text, words
    assert PHONE not in page.text
    assert ("alice", "view", web.reference) == web.actions()[0]
    # Lower-case or spaced references find the same handoff.
    assert client.get(f"/staff/h/{web.reference.lower()}").status_code == 200


def test_reveal_is_a_post_and_is_audited(web):
    client = web.signed_in()
    csrf = page_csrf(client, f"/staff/h/{web.reference}")
    revealed = client.post(f"/staff/h/{web.reference}/reveal", data={"csrf_token": csrf})
    assert revealed.status_code == 200 and PHONE in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    assert web.actions()[0] == ("alice", "reveal", web.reference)
    assert PHONE not in str(web.store.audit())
    assert PHONE not in client.get(f"/staff/h/{web.reference}").text  # masked again


def test_export_downloads_markdown_and_is_audited(web):
    client = web.signed_in()
    csrf = page_csrf(client)
    response = client.post(f"/staff/h/{web.reference}/export", data={"csrf_token": csrf})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="handoff-{web.reference}.md"')
    assert "ending 123" in response.text and PHONE not in response.text
    assert web.actions()[0] == ("alice", "export", web.reference)


def test_notes_status_and_assign_through_the_page(web):
    client = web.signed_in()
    csrf = page_csrf(client)
    ref = web.reference
    note = client.post(f"/staff/h/{ref}/notes", data={"text": "Rang, no answer", "csrf_token": csrf})
    assert note.status_code == 303 and note.headers["location"] == f"/staff/h/{ref}?done=note"
    assert client.post(f"/staff/h/{ref}/notes",
                       data={"text": "  ", "csrf_token": csrf}).status_code == 400
    assert client.post(f"/staff/h/{ref}/status",
                       data={"status": "in_progress", "csrf_token": csrf}).status_code == 303
    assert client.post(f"/staff/h/{ref}/status",
                       data={"status": "bogus", "csrf_token": csrf}).status_code == 400
    assert client.post(f"/staff/h/{ref}/assign", data={"csrf_token": csrf}).status_code == 303
    page = client.get(f"/staff/h/{ref}?done=note")
    assert "Rang, no answer" in page.text and "Note added." in page.text
    handoff = web.store.get(ref, "test")
    assert handoff["status"] == "in_progress" and handoff["assigned_to"] == "alice"
    kinds = [a[1] for a in web.actions()]
    assert {"note", "status", "assign"} <= set(kinds)


def test_admin_delete_with_confirmation_is_audited(web):
    client = web.signed_in("root", ADMIN_PASSWORD)
    confirm = client.get(f"/staff/h/{web.reference}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert web.store.get(web.reference, "test")  # showing the confirmation deletes nothing
    done = client.post(f"/staff/h/{web.reference}/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303
    assert web.actions()[0] == ("root", "delete", web.reference)
    assert f"Handoff {web.reference} was deleted" in client.get(done.headers["location"]).text
    gone = client.get(f"/staff/h/{web.reference}")
    assert gone.status_code == 404 and "Page not found" in gone.text
    audit = client.get("/staff/audit")
    assert audit.status_code == 200 and web.reference in audit.text and "delete" in audit.text
    assert PHONE not in audit.text and "They shouted" not in audit.text


def test_markup_in_transcript_and_notes_is_escaped(web):
    client = web.signed_in()
    client.post(f"/staff/h/{web.reference}/notes",
                data={"text": '<img src=x onerror="alert(1)">', "csrf_token": page_csrf(client)})
    page = client.get(f"/staff/h/{web.reference}").text
    assert XSS not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "<script" not in page.lower()  # the page itself has no scripts at all


def test_unknown_refs_and_path_traversal_are_plain_404s(web):
    client = web.signed_in()
    for path in ("/staff/h/AAA-AAA-AAA", "/staff/h/not-a-reference", "/staff/h/../../etc/passwd",
                 "/staff/h/..%2F..%2Fetc%2Fpasswd", "/staff/h/%2e%2e/%2e%2e/etc/passwd",
                 "/staff/static/../../../../etc/passwd", "/staff/static/..%2F..%2Fsettings.py",
                 "/staff/no-such-page"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Traceback" not in response.text and "root:" not in response.text
    missing = client.get("/staff/h/AAA-AAA-AAA")
    assert "Page not found" in missing.text and 'href="/staff/static/staff.css"' in missing.text
    csrf = page_csrf(client)
    assert client.post("/staff/h/AAA-AAA-AAA/notes",
                       data={"text": "x", "csrf_token": csrf}).status_code == 404
    assert client.post("/staff/h/AAA-AAA-AAA/reveal", data={"csrf_token": csrf}).status_code == 404


def test_pages_are_accessible_and_self_contained(web):
    client = web.signed_in("root", ADMIN_PASSWORD)
    ref = web.reference
    pages = [client.get(p).text for p in ("/staff/", f"/staff/h/{ref}", "/staff/audit",
                                          f"/staff/h/{ref}/delete")]
    pages.append(web.client().get("/staff/login").text)
    for html in pages:
        assert '<html lang="en">' in html and "<h1>" in html
        assert 'class="skip-link" href="#main"' in html and 'id="main"' in html
        assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from other origins
        # Every visible control has a label (or is a button with text).
        for control in re.finditer(r"<(input|select|textarea)\b([^>]*)>", html):
            attrs = control.group(2)
            if 'type="hidden"' in attrs:
                continue
            control_id = re.search(r'id="([^"]+)"', attrs).group(1)
            assert f'<label for="{control_id}"' in html, control_id
    headers = client.get("/staff/").headers
    assert headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in headers[
        "content-security-policy"]


def test_no_ip_addresses_are_stored(web):
    client = web.signed_in("root", ADMIN_PASSWORD)
    web.sign_in(web.client(), "alice", "wrong password!!")
    csrf = page_csrf(client)
    client.get(f"/staff/h/{web.reference}")
    client.post(f"/staff/h/{web.reference}/reveal", data={"csrf_token": csrf})
    client.post(f"/staff/h/{web.reference}/notes", data={"text": "ok", "csrf_token": csrf})
    raw = web.stored_bytes()
    # TestClient's client address is "testclient"; nothing like an address is kept.
    assert b"testclient" not in raw and b"127.0.0.1" not in raw
    columns = {
        column for table in ("audit_log", "staff_sessions", "staff_users")
        for column in table_columns(web.store, table)
    }
    assert {"actor", "token_hash", "username"} <= columns
    assert not {c for c in columns if "ip" in c.split("_") or "addr" in c}


# -- a real server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_through_a_real_uvicorn_server(tmp_path, monkeypatch, store_url):
    import uvicorn

    # Production argon2 costs.
    web = Staff(tmp_path, monkeypatch, hasher=PasswordHasher(), store_url=store_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        web.app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        anonymous = requests.get(f"{base}/staff/", allow_redirects=False, timeout=10)
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/staff/login"

        session = requests.Session()
        login = session.get(f"{base}/staff/login", timeout=10)
        assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
        signed = session.post(f"{base}/staff/login", timeout=10, allow_redirects=False, data={
            "username": "alice", "password": STAFF_PASSWORD, "csrf_token": csrf_of(login.text)})
        assert signed.status_code == 303
        raw_cookie = next(v for k, v in signed.raw.headers.items()
                          if k.lower() == "set-cookie" and v.startswith("sr_staff="))
        assert "HttpOnly" in raw_cookie and "SameSite=strict" in raw_cookie
        assert "Path=/staff" in raw_cookie

        queue = session.get(f"{base}/staff/", timeout=10)
        assert queue.status_code == 200 and web.reference in queue.text
        page = session.get(f"{base}/staff/h/{web.reference}", timeout=10)
        assert "ending 123" in page.text and PHONE not in page.text
        csrf = csrf_of(page.text)
        assert session.post(f"{base}/staff/h/{web.reference}/reveal", timeout=10,
                            data={"csrf_token": "nope"}).status_code == 403
        revealed = session.post(f"{base}/staff/h/{web.reference}/reveal", timeout=10,
                                data={"csrf_token": csrf})
        assert PHONE in revealed.text
        assert session.get(f"{base}/staff/audit", timeout=10).status_code == 403
        assert session.get(f"{base}/staff/h/..%2F..%2Fetc%2Fpasswd", timeout=10).status_code == 404
        session.post(f"{base}/staff/logout", data={"csrf_token": csrf}, timeout=10)
        assert session.get(f"{base}/staff/", allow_redirects=False, timeout=10).status_code == 303

        assert [a[1] for a in web.actions()][:3] == ["reveal", "view", "list"]
        raw = web.stored_bytes()
        assert b"127.0.0.1" not in raw and PHONE.encode() not in raw
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        web.store.close()


def test_staff_app_is_uncacheable_even_when_mounted_bare(web):
    bare = Starlette(routes=[Mount("/staff", app=web.staff_app)])
    client = TestClient(bare, follow_redirects=False)
    login = client.get("/staff/login")
    assert login.headers["cache-control"] == "no-store"
    assert login.headers["x-frame-options"] == "DENY"
