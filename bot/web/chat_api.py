"""The chat API that the page and the widget talk to: a thin proxy to Rasa's REST channel.

    POST   /api/chat                   {"sender", "message"} → {"messages": [...]}
    DELETE /api/conversation/{sender}  deletes that conversation at once → 204

The browser only ever talks to this app's own origin; Rasa listens on loopback. What the
proxy adds:
- input checks before anything reaches Rasa: JSON only, a body-size limit, the sender-id
  format, a string message; every refusal is a short JSON error (4xx), never a 500;
- timeouts, and a calm 503 with the emergency number when Rasa cannot be reached;
- only known fields go back to the browser (text, buttons, the article `custom` payload
  with http(s) source links), so the page renders data, never markup;
- CORS for the widget, for exact origins in WIDGET_ALLOWED_ORIGINS only; a browser request
  from any other site is refused;
- the messages of one conversation go to Rasa one at a time, in the order they arrived
  here, so several Rasa workers or processes cannot store them out of order;
- a conversation deleted while one of its messages is still with Rasa is deleted again when
  that message comes back (Rasa would otherwise write the whole turn back).
Message text never reaches a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.settings import Settings

logger = logging.getLogger(__name__)

SENDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
BAD_SENDER = "`sender` must be 1 to 128 letters, digits, '-' or '_'."
BAD_JSON = 'Send a JSON object: {"sender": "...", "message": "..."}.'
ARTICLE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

UNAVAILABLE_MESSAGE = (
    "I can't connect right now. If you are in danger, call 999. "
    "Please wait a minute, then try again."
)
DELETE_FAILED_MESSAGE = (
    "I couldn't delete the conversation just now. Please try again in a minute. "
    "If you are in danger, call 999."
)

# Rasa can take a while on a busy turn (actions, knowledge search), never forever.
RASA_TIMEOUT = aiohttp.ClientTimeout(total=45, connect=5)
# What Rasa sends back for one message is small; anything bigger is not a reply we want.
MAX_RASA_REPLY_BYTES = 1_000_000
MAX_MESSAGES = 20
MAX_BUTTONS = 12
MAX_SOURCES = 10


def body_limit(settings: Settings) -> int:
    """Bytes a chat request may have: the longest message, JSON-escaped, with room to spare."""
    return max(16_384, settings.max_message_chars * 12 + 1024)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


# --- What goes back to the browser -------------------------------------------------------


def _text(value: Any, limit: int = 10_000) -> str | None:
    return value[:limit] if isinstance(value, str) and value.strip() else None


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 2000:
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def clean_custom(custom: Any) -> dict[str, Any] | None:
    """The article payload of an answer, with only the fields and URLs the page may use."""
    if not isinstance(custom, dict):
        return None
    cleaned: dict[str, Any] = {}
    article_id = custom.get("article_id")
    if isinstance(article_id, str) and ARTICLE_ID.match(article_id):
        cleaned["article_id"] = article_id
    title = _text(custom.get("title"), 300)
    if title:
        cleaned["title"] = title
    sources = []
    for source in custom.get("sources") or []:
        if not isinstance(source, dict):
            continue
        source_title, url = _text(source.get("title"), 300), _http_url(source.get("url"))
        if not source_title:
            continue
        item: dict[str, Any] = {"title": source_title}
        if url:
            item["url"] = url
        if isinstance(source.get("date"), str) and ISO_DATE.match(source["date"]):
            item["date"] = source["date"]
        sources.append(item)
    if sources:
        cleaned["sources"] = sources[:MAX_SOURCES]
    reviewed = custom.get("last_reviewed")
    if isinstance(reviewed, str) and ISO_DATE.match(reviewed):
        cleaned["last_reviewed"] = reviewed
    return cleaned if cleaned.get("sources") or cleaned.get("title") else None


def clean_messages(raw: Any) -> list[dict[str, Any]]:
    """Rasa's reply list → [{text?, buttons?: [{title, payload}], custom?}], nothing else."""
    messages: list[dict[str, Any]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        message: dict[str, Any] = {}
        text = _text(item.get("text"))
        if text:
            message["text"] = text
        buttons = [
            {"title": button["title"][:200], "payload": button["payload"][:1000]}
            for button in item.get("buttons") or []
            if isinstance(button, dict)
            and _text(button.get("title"))
            and _text(button.get("payload"))
        ]
        if buttons:
            message["buttons"] = buttons[:MAX_BUTTONS]
        custom = clean_custom(item.get("custom"))
        if custom:
            message["custom"] = custom
        if message:
            messages.append(message)
    return messages[:MAX_MESSAGES]


# --- Origins and CORS -------------------------------------------------------------------


class Origins:
    """Who may call the API from a browser: this site, and the exact allowlisted origins."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = frozenset(allowed)
        for origin in allowed:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                logger.warning(
                    "WIDGET_ALLOWED_ORIGINS has %r, which is not an origin like "
                    "https://www.example.org: no browser will ever match it.", origin,
                )

    def check(self, request: Request) -> tuple[bool, str | None]:
        """(allowed?, the origin to echo in Access-Control-Allow-Origin, if cross-origin)."""
        origin = request.headers.get("origin")
        if origin is None:
            # Not a cross-origin browser request (browsers send Origin with POST and DELETE).
            return True, None
        if origin in self.allowed:
            return True, origin
        # This site itself. Browsers say so in Sec-Fetch-Site (a page cannot set it), which
        # also holds behind a reverse proxy that does not pass the Host header on.
        if request.headers.get("sec-fetch-site") == "same-origin":
            return True, None
        if origin != "null" and urlsplit(origin).netloc == request.headers.get("host"):
            return True, None
        return False, None

    @staticmethod
    def headers(origin: str | None) -> dict[str, str]:
        headers = {"vary": "Origin"}
        if origin:
            headers["access-control-allow-origin"] = origin
        return headers


# --- The routes -------------------------------------------------------------------------


class ChatAPI:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.origins = Origins(settings.widget_allowed_origins)
        self.webhook = f"{settings.rasa_url}/webhooks/rest/webhook"
        self.limit = body_limit(settings)
        self._session: aiohttp.ClientSession | None = None
        self._store = None
        # Senders with a message at Rasa right now, and those deleted meanwhile.
        self._in_flight: Counter[str] = Counter()
        self._deleted_in_flight: set[str] = set()
        # One message of a conversation at Rasa at a time, in the order they arrived here.
        # Rasa's own ticket lock orders by arrival at each Rasa worker, and with several
        # workers a busy one can pick up an earlier message after a later one (issue #9).
        # asyncio.Lock wakes its waiters first come, first served.
        self._turns: dict[str, asyncio.Lock] = {}

    # Resources, made on first use and closed with the app.
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # With several Rasa workers, a fresh connection per message lets whichever
            # worker is free accept it; kept-alive connections stay with the worker that
            # accepted them, and one worker ended up with all the work (make bench).
            connector = aiohttp.TCPConnector(force_close=self.settings.sanic_workers > 1)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=RASA_TIMEOUT, raise_for_status=False,
                trust_env=False,
            )
        return self._session

    def store(self):
        if self._store is None:
            from bot.tracker_store import ConversationStore

            if self.settings.tracker_url.startswith("sqlite"):
                self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._store = ConversationStore(self.settings.tracker_url)
        return self._store

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _delete(self, sender: str) -> int:
        return await asyncio.to_thread(self.store().delete, sender)

    # Helpers
    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None when it is bigger than the limit (read no further than that)."""
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > self.limit:
                    return None
            except ValueError:
                return None
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > self.limit:
                return None
        return bytes(body)

    def preflight(self, methods: str):
        async def options(request: Request) -> Response:
            allowed, origin = self.origins.check(request)
            if not allowed or not origin:
                return Response(status_code=403, headers={"vary": "Origin"})
            requested = request.headers.get("access-control-request-headers", "")
            extra = {h.strip().lower() for h in requested.split(",") if h.strip()}
            if not extra <= {"content-type"}:
                return Response(status_code=403, headers={"vary": "Origin"})
            return Response(
                status_code=204,
                headers={
                    **Origins.headers(origin),
                    "access-control-allow-methods": methods,
                    "access-control-allow-headers": "content-type",
                    "access-control-max-age": "600",
                },
            )

        return options

    def _cors(self, request: Request) -> tuple[dict[str, str], Response | None]:
        """The CORS headers for this request, or a 403 when its origin may not use the chat."""
        allowed, origin = self.origins.check(request)
        if not allowed:
            return {}, error(403, "forbidden_origin", "This site may not use the chat.",
                             {"vary": "Origin"})
        return Origins.headers(origin), None

    async def chat(self, request: Request) -> Response:
        cors, refusal = self._cors(request)
        if refusal is not None:
            return refusal
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return error(415, "unsupported_media_type", "Send JSON (Content-Type: application/json).", cors)
        raw = await self._read_body(request)
        if raw is None:
            return error(413, "too_large", "That message is too long. Please send a shorter one.", cors)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return error(400, "bad_json", BAD_JSON, cors)
        if not isinstance(body, dict):
            return error(400, "bad_json", BAD_JSON, cors)
        sender, message = body.get("sender"), body.get("message")
        if not isinstance(sender, str) or not SENDER_ID.match(sender):
            return error(400, "bad_sender", BAD_SENDER, cors)
        if not isinstance(message, str):
            return error(400, "bad_message", "`message` must be a string.", cors)

        self._in_flight[sender] += 1
        try:
            async with self._turns.setdefault(sender, asyncio.Lock()):
                status, reply = await self._ask_rasa(sender, message)
        finally:
            self._in_flight[sender] -= 1
            if self._in_flight[sender] <= 0:
                del self._in_flight[sender]
                self._turns.pop(sender, None)  # nobody holds or waits for it now
                if sender in self._deleted_in_flight:
                    self._deleted_in_flight.discard(sender)
                    await self._delete_quietly(sender)
                    status, reply = 410, None

        if status == 410:
            return error(410, "deleted", "This conversation was deleted.", cors)
        if status is None:
            return error(503, "unavailable", UNAVAILABLE_MESSAGE, {**cors, "retry-after": "30"})
        messages = clean_messages(reply)
        if status == 200:
            return JSONResponse({"messages": messages}, headers=cors)
        if status == 400:
            return error(400, "bad_request", "That message could not be read. Please try again.", cors)
        # Rasa answered, but could not handle the turn (its reply is calm text with 999).
        logger.error("Rasa answered a message with HTTP %s", status)
        return JSONResponse(
            {"error": "unavailable", "message": UNAVAILABLE_MESSAGE, "messages": messages},
            status_code=503, headers={**cors, "retry-after": "30"},
        )

    async def _ask_rasa(self, sender: str, message: str) -> tuple[int | None, Any]:
        """(HTTP status, parsed JSON) from Rasa, or (None, None) when it cannot be reached."""
        try:
            async with self.session().post(
                self.webhook, json={"sender": sender, "message": message}
            ) as reply:
                raw = await reply.content.read(MAX_RASA_REPLY_BYTES + 1)
                if len(raw) > MAX_RASA_REPLY_BYTES:
                    logger.error("Rasa's reply was too large; dropped.")
                    return None, None
                try:
                    return reply.status, json.loads(raw)
                except ValueError:
                    logger.error("Rasa's reply (HTTP %s) was not JSON.", reply.status)
                    return (None, None) if reply.status >= 500 else (reply.status, None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as failure:
            logger.error("Could not reach Rasa: %s", type(failure).__name__)
            return None, None

    async def _delete_quietly(self, sender: str) -> None:
        try:
            await self._delete(sender)
        except Exception as failure:  # the retention purge will catch it; say what failed
            logger.error("Could not delete a conversation: %s", type(failure).__name__)

    async def delete_conversation(self, request: Request) -> Response:
        cors, refusal = self._cors(request)
        if refusal is not None:
            return refusal
        sender = request.path_params["sender"]
        if not SENDER_ID.match(sender):
            return error(400, "bad_sender", BAD_SENDER, cors)
        if self._in_flight.get(sender):
            self._deleted_in_flight.add(sender)
        try:
            await self._delete(sender)
        except Exception as failure:
            logger.error("Could not delete a conversation: %s", type(failure).__name__)
            return error(503, "unavailable", DELETE_FAILED_MESSAGE, cors)
        return Response(status_code=204, headers=cors)

    def routes(self) -> list[Route]:
        return [
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/chat", self.preflight("POST"), methods=["OPTIONS"]),
            Route("/api/conversation/{sender}", self.delete_conversation, methods=["DELETE"]),
            Route("/api/conversation/{sender}", self.preflight("DELETE"), methods=["OPTIONS"]),
        ]
