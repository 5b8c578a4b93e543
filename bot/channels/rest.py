"""safe-report's REST channel: Rasa's RestInput with input checks and calm failures.

Same URL as Rasa's own (`POST /webhooks/rest/webhook`, body `{"sender", "message"}`), so
every REST client works unchanged. What it adds:
- the sender id must be a short token of letters, digits, `-` or `_` (the page makes a
  random 128-bit one); anything else is a clear 400;
- empty, too long or control-character messages get a polite reply, never a crash;
- client metadata is dropped (it could carry anything, and nothing needs it);
- message text never reaches a log line (Rasa's own channel logs it on errors, and Rasa's
  payload parser quotes a whole "/..." line it cannot parse): text that starts with "/" is
  passed on as a payload only when it is one (a domain intent, JSON entities the domain
  knows); anything else loses the leading "/" and is read as ordinary words;
- when the conversation store fails, the person gets a calm answer with the emergency
  numbers and HTTP 503, instead of the turn silently living only in memory;
- when a turn produced no bot message at all (Rasa swallows a failed custom action, e.g.
  the action server is down, and sends nothing), the person gets a calm "I can't look that
  up right now" with 999 and the 24/7 helplines, never silence. The numbers come from the
  contact registry (the knowledge base, or `knowledge/contacts.yml` when that is unreadable).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import rasa_patches
from bot.settings import PROJECT_ROOT, get_settings
from bot.tracker_store import store_failures

# This module is loaded only by the Rasa server (credentials.yml), so the fixes land there.
rasa_patches.install()

logger = logging.getLogger(__name__)

SENDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Chat commands a person can type, mapped to the intent payload Rasa understands.
COMMANDS = {"/forget": "/forget_conversation", "/delete": "/forget_conversation"}

EMPTY_REPLY = "I didn't get a message. Type what you would like to ask, or choose a button."
TOO_LONG_REPLY = (
    "That message is too long for me. Could you send a shorter one, in a few sentences? "
    "If you are in danger now, call 999."
)
STORE_FAILED_REPLY = (
    "Sorry, something went wrong on our side, and I could not save that. "
    "Please try again in a minute. If you are in danger now, call 999. "
    "You can also call the Victim Support line or the National Domestic Abuse Helpline any time."
)
FAILED_REPLY = (
    "Sorry, something went wrong on our side. Please try again in a minute. "
    "If you are in danger now, call 999."
)

NO_REPLY_INTRO = "Sorry, I can't look that up right now. Please try again in a few minutes."
# Preferred 24/7 helplines for the no-reply message (keys of knowledge/contacts.yml); any
# other 24/7 helpline in the registry fills in when one of these is missing.
NO_REPLY_HELPLINES = ("national_da_helpline", "victim_support", "modern_slavery_helpline")
EMERGENCY_CONTACT = "police_999"
LONDON = ZoneInfo("Europe/London")


def _registry_contacts() -> list:
    """The contacts of the registry: the knowledge base, else knowledge/contacts.yml."""
    try:
        from bot.knowledge import KnowledgeBase

        return KnowledgeBase.open(get_settings().knowledge_db).contacts()
    except Exception as error:
        logger.warning("Knowledge base unreadable for the helplines (%s); using contacts.yml.",
                       type(error).__name__)
    try:
        from bot.knowledge.contacts import load_contacts

        contacts, _errors, _warnings = load_contacts(PROJECT_ROOT / "knowledge" / "contacts.yml")
        return list(contacts.values())
    except Exception as error:
        logger.error("The contact registry cannot be read: %s", type(error).__name__)
        return []


def no_reply_text(now: datetime | None = None) -> str:
    """Calm text for a turn that produced no message: 999 and two or three 24/7 helplines."""
    now = now or datetime.now(LONDON)
    contacts = _registry_contacts()
    by_key = {c.key: c for c in contacts}
    emergency = by_key.get(EMERGENCY_CONTACT)
    always = [c for c in contacts if c.is_24_7 and c.phone and not c.is_universal_number]
    chosen = [by_key[k] for k in NO_REPLY_HELPLINES if k in by_key and by_key[k] in always]
    chosen += [c for c in always if c not in chosen][: max(0, 3 - len(chosen))]
    lines = [NO_REPLY_INTRO]
    if emergency is not None:
        lines.append(f"If you are in danger now, call {emergency.phone}.")
    else:  # the registry itself is unreadable: the one number that must never be missing
        lines.append("If you are in danger now, call 999.")
    if chosen:
        lines.append("Open day and night:")
        lines.extend(f"- {c.describe(now)}" for c in chosen[:3])
    return "\n".join(lines)

PAYLOAD = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*)(\{.*\})?$", re.DOTALL)


@lru_cache(maxsize=1)
def _domain_names() -> tuple[frozenset[str], frozenset[str]]:
    """(intents, entities) of domain.yml; empty when it cannot be read."""
    try:
        import yaml

        domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))

        def names(items) -> frozenset[str]:
            return frozenset(next(iter(i)) if isinstance(i, dict) else str(i) for i in items or [])

        return names(domain.get("intents")), names(domain.get("entities"))
    except Exception as error:
        logger.error("domain.yml cannot be read for payload checks: %s", type(error).__name__)
        return frozenset(), frozenset()


def is_payload(text: str) -> bool:
    """True for "/intent" or "/intent{json}" with a domain intent and domain entities."""
    match = PAYLOAD.match(text)
    if not match:
        return False
    intents, entities = _domain_names()
    if match.group(1) not in intents:
        return False
    if match.group(2):
        try:
            values = json.loads(match.group(2))
        except ValueError:
            return False
        if not isinstance(values, dict) or not set(values) <= entities:
            return False
        if not all(isinstance(v, (str, int, float, bool)) for v in values.values()):
            return False
    return True


def clean_message(text: str) -> str:
    """NFC-normalised text without control characters (new lines and tabs stay)."""
    return CONTROL_CHARACTERS.sub("", unicodedata.normalize("NFC", text)).strip()


def _reply(sender_id: str, text: str, status: int = 200) -> HTTPResponse:
    return response.json([{"recipient_id": sender_id, "text": text}], status=status)


def _error(message: str, status: int = 400) -> HTTPResponse:
    return response.json({"error": message}, status=status)


class SafeRestInput(RestInput):
    """Configured in credentials.yml as `bot.channels.rest.SafeRestInput`."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        webhook = Blueprint("safe_report_rest", __name__)
        max_chars = get_settings().max_message_chars

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:
                body = None
            if not isinstance(body, dict):
                return _error("Send a JSON object: {\"sender\": \"...\", \"message\": \"...\"}.")
            sender_id, text = body.get("sender"), body.get("message")
            if not isinstance(sender_id, str) or not SENDER_ID.match(sender_id):
                return _error("`sender` must be 1 to 128 letters, digits, '-' or '_'.")
            if text is None or not isinstance(text, str):
                return _error("`message` must be a string.")
            text = clean_message(text)
            if not text:
                return _reply(sender_id, EMPTY_REPLY)
            if len(text) > max_chars:
                return _reply(sender_id, TOO_LONG_REPLY)
            text = COMMANDS.get(text.lower(), text)
            if text.startswith("/") and not is_payload(text):
                # Not a button payload: read it as words (Rasa would log the whole line).
                text = text.lstrip("/").strip()
                if not text:
                    return _reply(sender_id, EMPTY_REPLY)

            collector = CollectingOutputChannel()
            failures: list[str] = []
            token = store_failures.set(failures)
            try:
                await on_new_message(
                    UserMessage(text, collector, sender_id, input_channel=self.name())
                )
            except asyncio.CancelledError:
                logger.error("A message timed out before it was answered.")
                return _reply(sender_id, FAILED_REPLY, status=503)
            except Exception as error:
                # The type only: the exception text could quote the message.
                logger.error("A message could not be handled: %s", type(error).__name__)
                return _reply(sender_id, FAILED_REPLY, status=503)
            finally:
                store_failures.reset(token)
            if failures:
                logger.error("Conversation store failed during a message: %s", ", ".join(failures))
                return response.json(
                    collector.messages + [{"recipient_id": sender_id, "text": STORE_FAILED_REPLY}],
                    status=503,
                )
            if not collector.messages:
                # Rasa sends nothing when a custom action fails (action server down or
                # broken): never leave the person with silence.
                logger.error("A turn produced no reply (is the action server down?); "
                             "sent the calm no-reply message with the helplines.")
                return _reply(sender_id, no_reply_text())
            return response.json(collector.messages)

        return webhook
