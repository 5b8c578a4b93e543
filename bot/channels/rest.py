"""safe-report's REST channel: Rasa's RestInput with input checks and calm failures.

Same URL as Rasa's own (`POST /webhooks/rest/webhook`, body `{"sender", "message"}`), so
every REST client works unchanged. What it adds:
- the sender id must be a short token of letters, digits, `-` or `_` (the page makes a
  random 128-bit one); anything else is a clear 400;
- empty, too long or control-character messages get a polite reply, never a crash;
- client metadata is dropped (it could carry anything, and nothing needs it);
- message text never reaches a log line (Rasa's own channel logs it on errors);
- when the conversation store fails, the person gets a calm answer with the emergency
  numbers and HTTP 503, instead of the turn silently living only in memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import get_settings
from bot.tracker_store import store_failures

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
            return response.json(collector.messages)

        return webhook
