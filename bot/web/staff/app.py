"""The staff review app: the handoff queue, one handoff, notes, status, export, audit.

Mounted by the web app as `Mount("/staff", app=create_staff_app(settings))`. Every route
except the sign-in page and the static CSS needs a signed-in staff session; anonymous
requests are sent to the sign-in page (303), or get 401 when they ask for JSON. Every
POST carries the session's CSRF token (the sign-in form a signed double-submit token).
Deleting a handoff and reading the audit log are for admins only.

Nothing here logs or stores IP addresses. Responses get `Cache-Control: no-store` and the
other security headers (bot.web.security) from this app and from the parent app.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.handoff.reference import normalize_reference
from bot.handoff.store import (
    LABELS,
    STATUSES,
    HandoffError,
    HandoffNotFound,
    HandoffStore,
    label,
)
from bot.privacy.crypto import ContactCryptoError
from bot.settings import Settings, get_settings
from bot.web.security import SecurityHeadersMiddleware
from bot.web.staff.accounts import StaffAccounts, StaffSession

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "sr_staff"
LOGIN_CSRF_COOKIE = "sr_staff_login"
LOGIN_CSRF_MAX_AGE = 3600
PAGE_SIZE = 50
SIGN_IN_FAILED = (
    "Sign-in failed. Check your username and password. After several failed attempts an "
    "account is locked for a while."
)

Endpoint = Callable[[Request, StaffSession], Response]


def _prefix(request: Request) -> str:
    """Where the app is mounted ("/staff"), so links and cookies follow the mount."""
    return request.scope.get("root_path", "").rstrip("/")


def _url(request: Request, path: str, query: dict[str, Any] | None = None) -> str:
    query = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    return _prefix(request) + path + (("?" + urlencode(query)) if query else "")


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _date(value: str | None, *, end: bool = False) -> date | None:
    """A filter date, or None (no filter) when it is not one. The store reads an end date as
    "before the next day"; the last date there is has no next day (and nothing is later),
    so as an end date it means no end (found by the schemathesis fuzz: it was a 500)."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return None if end and day == date.max else day


def create_staff_app(
    settings: Settings | None = None,
    *,
    store: HandoffStore | None = None,
    accounts: StaffAccounts | None = None,
) -> Starlette:
    settings = settings or get_settings()
    store = store or HandoffStore(settings=settings)
    accounts = accounts or StaffAccounts(store, settings)
    secret = settings.session_secret.encode("utf-8")
    if not secret:
        logger.warning(
            "STAFF_SESSION_SECRET is not set: using a random one for this process "
            "(sign-in forms will not survive a restart). `safe-report run` sets it in .env."
        )
        secret = secrets.token_bytes(32)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(label=label, LABELS=LABELS, STATUSES=STATUSES)
    templates = Jinja2Templates(env=env)

    # -- helpers ---------------------------------------------------------------------

    def render(request: Request, name: str, context: dict[str, Any],
               status_code: int = 200) -> Response:
        context.setdefault("staff", getattr(request.state, "staff", None))
        context.setdefault("base", _prefix(request))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def error_page(request: Request, status_code: int, message: str,
                   headers: dict[str, str] | None = None) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status_code, headers=headers)
        titles = {400: "Something is wrong with that request", 403: "Not allowed",
                  404: "Page not found", 405: "Not allowed", 500: "Something went wrong"}
        response = render(request, "error.html",
                          {"title": titles.get(status_code, "Error"), "message": message},
                          status_code)
        response.headers.update(headers or {})
        return response

    def login_token() -> str:
        nonce = f"{secrets.token_urlsafe(24)}.{int(time.time())}"
        mac = hmac.new(secret, b"staff-login-csrf:" + nonce.encode(), hashlib.sha256)
        return f"{nonce}.{mac.hexdigest()}"

    def login_token_valid(cookie: str | None, field: Any) -> bool:
        if not cookie or not isinstance(field, str) or not hmac.compare_digest(
            cookie.encode("utf-8", "replace"), field.encode("utf-8", "replace")
        ):
            return False
        try:
            nonce, issued, mac = cookie.rsplit(".", 2)
            age = time.time() - int(issued)
        except ValueError:
            return False
        expected = hmac.new(secret, f"staff-login-csrf:{nonce}.{issued}".encode(),
                            hashlib.sha256).hexdigest()
        return (hmac.compare_digest(mac.encode("utf-8", "replace"), expected.encode())
                and 0 <= age <= LOGIN_CSRF_MAX_AGE)

    def cookie_path(request: Request) -> str:
        return _prefix(request) or "/"

    def login_page(request: Request, *, error: str | None = None, notice: str | None = None,
                   status_code: int = 200) -> Response:
        token = login_token()
        response = render(request, "login.html",
                          {"csrf_token": token, "error": error, "notice": notice},
                          status_code)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_CSRF_MAX_AGE,
                            path=cookie_path(request), secure=_is_https(request),
                            httponly=True, samesite="strict")
        return response

    async def current_session(request: Request) -> StaffSession | None:
        return await run_in_threadpool(accounts.session, request.cookies.get(SESSION_COOKIE))

    def refuse_anonymous(request: Request) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "Sign in first."}, status_code=401)
        expired = bool(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(
            _url(request, "/login", {"expired": "1" if expired else None}), status_code=303
        )
        if expired:
            response.delete_cookie(SESSION_COOKIE, path=cookie_path(request),
                                   secure=_is_https(request), httponly=True, samesite="strict")
        return response

    def protected(endpoint: Endpoint, *, admin: bool = False) -> Callable:
        """Signed-in staff only; POSTs need the session's CSRF token; admin pages need admin.

        The session check and the endpoint (database work and rendering) run together in
        one worker thread: one hop off the event loop per request.
        """

        async def guarded(request: Request) -> Response:
            form = None
            if request.method == "POST":
                form = await request.form(max_files=0, max_fields=20)

            def work() -> Response:
                session = accounts.session(request.cookies.get(SESSION_COOKIE))
                if session is None:
                    return refuse_anonymous(request)
                request.state.staff = session
                if form is not None:
                    sent = form.get("csrf_token")
                    if not isinstance(sent, str) or not hmac.compare_digest(
                        sent.encode("utf-8", "replace"), session.csrf_token.encode()
                    ):
                        return error_page(
                            request, 403, "This form has expired. Go back, reload and try again."
                        )
                    request.state.form = form
                if admin and not session.is_admin:
                    return error_page(request, 403, "Only an admin can do this.")
                return endpoint(request, session)

            return await run_in_threadpool(work)

        guarded.__name__ = endpoint.__name__
        return guarded

    def reference_of(request: Request) -> str:
        reference = normalize_reference(request.path_params.get("ref"))
        if reference is None:
            raise HTTPException(404)
        return reference

    def handoff_page(request: Request, session: StaffSession, reference: str, *,
                     audit: bool, revealed: str | None = None, error: str | None = None,
                     status_code: int = 200) -> Response:
        handoff = store.get(reference, session.username, audit=audit)
        done = {"note": "Note added.", "status": "Status changed.",
                "assign": "Assigned to you."}.get(request.query_params.get("done", ""))
        return render(request, "handoff.html", {
            "h": handoff, "s": handoff["situation"], "csrf_token": session.csrf_token,
            "revealed": revealed, "error": error, "notice": done,
        }, status_code)

    # -- routes ----------------------------------------------------------------------

    async def login(request: Request) -> Response:
        if request.method == "GET":
            if await current_session(request) is not None:
                return RedirectResponse(_url(request, "/"), status_code=303)
            notice = None
            if request.query_params.get("expired"):
                notice = "You were signed out. Please sign in again."
            elif request.query_params.get("signed_out"):
                notice = "You have signed out."
            return login_page(request, notice=notice)
        form = await request.form(max_files=0, max_fields=10)
        if not login_token_valid(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
            return login_page(request, error="The sign-in form expired. Please try again.",
                              status_code=403)
        username = form.get("username")
        password = form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return login_page(request, error=SIGN_IN_FAILED, status_code=400)
        user = await run_in_threadpool(accounts.authenticate, username, password)
        if user is None:
            return login_page(request, error=SIGN_IN_FAILED, status_code=401)
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await run_in_threadpool(accounts.end_session, old)
        token, _session = await run_in_threadpool(accounts.create_session, user)
        response = RedirectResponse(_url(request, "/"), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, path=cookie_path(request),
                            secure=_is_https(request), httponly=True, samesite="strict")
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=cookie_path(request),
                               secure=_is_https(request), httponly=True, samesite="strict")
        return response

    def logout(request: Request, session: StaffSession) -> Response:
        accounts.end_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(_url(request, "/login", {"signed_out": "1"}),
                                    status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=cookie_path(request),
                               secure=_is_https(request), httponly=True, samesite="strict")
        return response

    def queue(request: Request, session: StaffSession) -> Response:
        q = request.query_params
        filters = {
            "status": q.get("status") if q.get("status") in STATUSES else None,
            "nation": q.get("nation") if q.get("nation") in LABELS["nation"] else None,
            "situation": (q.get("situation")
                          if q.get("situation") in LABELS["what_happened"] else None),
            "from": _date(q.get("from")),
            "to": _date(q.get("to"), end=True),
        }
        try:
            page = min(max(int(q.get("page", "1")), 1), 100_000)
        except ValueError:
            page = 1
        rows = store.list(
            status=filters["status"], nation=filters["nation"],
            what_happened=filters["situation"], since=filters["from"],
            until=filters["to"], limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
            actor=session.username,
        )
        counts = store.counts()
        query = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items()}
        notice = None
        if q.get("deleted"):
            deleted = normalize_reference(q.get("deleted"))
            notice = f"Handoff {deleted} was deleted." if deleted else None
        return render(request, "queue.html", {
            "rows": rows[:PAGE_SIZE], "counts": counts, "filters": query, "page": page,
            "previous_url": _url(request, "/", {**query, "page": page - 1}) if page > 1 else None,
            "next_url": (_url(request, "/", {**query, "page": page + 1})
                         if len(rows) > PAGE_SIZE else None),
            "filtered": any(query.values()), "notice": notice,
        })

    def view(request: Request, session: StaffSession) -> Response:
        return handoff_page(request, session, reference_of(request), audit=True)

    def reveal(request: Request, session: StaffSession) -> Response:
        reference = reference_of(request)
        try:
            detail = store.reveal(reference, session.username)
        except ContactCryptoError:
            return handoff_page(
                request, session, reference, audit=False, status_code=500,
                error="The contact detail could not be decrypted: the encryption key is missing "
                      "or is not the one it was saved with. Tell an admin.",
            )
        return handoff_page(request, session, reference, audit=False,
                            revealed=detail or "No contact detail was given.")

    def add_note(request: Request, session: StaffSession) -> Response:
        reference = reference_of(request)
        text = request.state.form.get("text")
        try:
            store.add_note(reference, session.username, text)
        except HandoffError as error:
            return handoff_page(request, session, reference, audit=False,
                                error=f"{error}.", status_code=400)
        return RedirectResponse(_url(request, f"/h/{reference}", {"done": "note"}),
                                status_code=303)

    def change_status(request: Request, session: StaffSession) -> Response:
        reference = reference_of(request)
        status = request.state.form.get("status")
        if status not in STATUSES:
            return handoff_page(request, session, reference, audit=False,
                                error="Choose a status.", status_code=400)
        store.set_status(reference, session.username, status)
        return RedirectResponse(_url(request, f"/h/{reference}", {"done": "status"}),
                                status_code=303)

    def assign_to_me(request: Request, session: StaffSession) -> Response:
        reference = reference_of(request)
        store.assign(reference, session.username)
        return RedirectResponse(_url(request, f"/h/{reference}", {"done": "assign"}),
                                status_code=303)

    def export(request: Request, session: StaffSession) -> Response:
        reference = reference_of(request)
        text = store.export_markdown(reference, session.username)
        return Response(
            text, media_type="text/markdown; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="handoff-{reference}.md"'},
        )

    def delete(request: Request, session: StaffSession) -> Response:
        reference = reference_of(request)
        if request.method == "GET":
            handoff = store.get(reference, session.username)
            return render(request, "delete.html",
                          {"h": handoff, "csrf_token": session.csrf_token})
        store.delete(reference, session.username)
        return RedirectResponse(_url(request, "/", {"deleted": reference}), status_code=303)

    def audit_log(request: Request, session: StaffSession) -> Response:
        rows = store.audit(200)
        return render(request, "audit.html", {"rows": rows})

    # -- errors ----------------------------------------------------------------------

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status in (404, 405):
            session = await current_session(request)
            if session is None:
                return refuse_anonymous(request)
            request.state.staff = session
        messages = {
            404: "There is no handoff or page here. It may have been deleted.",
            405: "That is not something this page can do.",
        }
        # 405's Allow header (RFC 9110) goes along; anonymous requests never get this far.
        headers = getattr(exc, "headers", None) if isinstance(exc, HTTPException) else None
        if status == 405 and not headers:  # StaticFiles' 405 names no methods; it has two
            headers = {"allow": "GET, HEAD"}
        return error_page(request, status, messages.get(status, "Please go back and try again."),
                          headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        session = getattr(request.state, "staff", None) or await current_session(request)
        if session is None:
            return refuse_anonymous(request)
        request.state.staff = session
        return error_page(request, 404,
                          "There is no handoff or page here. It may have been deleted.")

    async def server_error(request: Request, exc: Exception) -> Response:
        # Say what kind of failure, never the data involved.
        logger.error("Staff app error: %s", type(exc).__name__)
        return PlainTextResponse("Something went wrong. Please try again.", status_code=500)

    routes = [
        Route("/", protected(queue), methods=["GET"], name="queue"),
        Route("/login", login, methods=["GET", "POST"], name="login"),
        Route("/logout", protected(logout), methods=["POST"], name="logout"),
        Route("/h/{ref}", protected(view), methods=["GET"], name="handoff"),
        Route("/h/{ref}/reveal", protected(reveal), methods=["POST"], name="reveal"),
        Route("/h/{ref}/notes", protected(add_note), methods=["POST"], name="add_note"),
        Route("/h/{ref}/status", protected(change_status), methods=["POST"], name="status"),
        Route("/h/{ref}/assign", protected(assign_to_me), methods=["POST"], name="assign"),
        Route("/h/{ref}/export", protected(export), methods=["POST"], name="export"),
        Route("/h/{ref}/delete", protected(delete, admin=True), methods=["GET", "POST"],
              name="delete"),
        Route("/audit", protected(audit_log, admin=True), methods=["GET"], name="audit"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        debug=False,
        routes=routes,
        exception_handlers={
            HandoffNotFound: not_found,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    # The parent app adds these too; repeating them here keeps the staff pages (which can
    # show a revealed contact detail) uncacheable however the app is mounted.
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.settings = settings
    app.state.store = store
    app.state.accounts = accounts
    return app
