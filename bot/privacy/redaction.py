"""Redaction of Rasa tracker events before they are persisted.

Everything that reaches a disk goes through here first: user message text and its parse
data, slot values, bot text. Categorical values the bot itself chose (slot values from a
fixed list, intent names) are kept; free text is replaced by `bot.privacy.pii.redact`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bot.privacy.pii import redact

# Slots whose values come from a fixed list of words the bot defines, never from free text.
CATEGORICAL_SLOTS = {
    "role",
    "what_happened",
    "danger_now",
    "nation",
    "service",
    "immigration_fear",
    "articles_shown",
    "last_article",
    "requested_slot",
    "contact_method",
    "contact_detail_masked",
    "may_leave_message",
    "may_say_who",
    "handoff_reference",
    "session_started_metadata",
}

# Entity values kept as they are after synonym mapping: anything else is redacted.
CATEGORICAL_ENTITY_VALUES = {
    "role": {"victim", "witness", "someone_else"},
    "what_happened": {
        "domestic_abuse", "sexual_violence", "assault", "hate_crime", "modern_slavery",
        "labour_exploitation", "theft_fraud", "other",
    },
    "nation": {"england-wales", "scotland", "northern-ireland"},
    "service": {"police", "health", "school", "housing", "employer", "landlord"},
    "immigration_fear": {"true"},
    "contact_method": {"phone", "text", "email", "self"},
}

# Slots that hold a contact detail: only ever stored as a Fernet token (bot.privacy.crypto).
# The raw value a person typed is replaced, whatever it looks like.
ENCRYPTED_SLOTS = {"contact_detail"}
FERNET_PREFIX = "gAAAAA"

REDACTED = "[REDACTED]"
CONTACT_DETAIL = "[CONTACT_DETAIL]"


@lru_cache(maxsize=4096)
def _redact_bot_text(text: str) -> str:
    """The bot says the same responses over and over: redact each text once.

    Redacting bot texts afresh was a fifth of the time of every saved turn
    (benchmarks/bench_stack.py profile); they are checked all the same, in case an action
    ever echoes what a person typed.
    """
    return redact(text)


def _redact_entity(entity: dict[str, Any]) -> dict[str, Any]:
    entity = dict(entity)
    allowed = CATEGORICAL_ENTITY_VALUES.get(entity.get("entity", ""), set())
    if str(entity.get("value")) not in allowed:
        entity["value"] = REDACTED
    # Offsets into the original text would let a reader line up a redacted span.
    entity.pop("text", None)
    return entity


def _redact_parse_data(
    parse_data: dict[str, Any], already: tuple[str, str] | None = None
) -> dict[str, Any]:
    """`already` is (text, its redaction) when the caller has redacted the same text: the
    parse data repeats the message text, and the detector is the slow part of a save."""
    parse_data = dict(parse_data)
    if "text" in parse_data:
        text = parse_data.get("text") or ""
        parse_data["text"] = already[1] if already and already[0] == text else redact(text)
    parse_data["entities"] = [_redact_entity(e) for e in parse_data.get("entities") or []]
    parse_data.pop("metadata", None)
    return parse_data


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


def redact_event(event: dict[str, Any], *, is_contact_detail: bool = False) -> dict[str, Any]:
    """A copy of one serialised Rasa event that is safe to write to disk.

    `is_contact_detail` marks the user message that answered "what number or email?":
    its text is replaced whole, so a detail the detector would miss is not kept either.
    """
    # A shallow copy is enough: every nested value that changes is rebuilt, never edited in
    # place (tests/test_properties.py checks the input is left alone).
    event = dict(event)
    kind = event.get("event")
    if kind == "user" and is_contact_detail:
        event["text"] = CONTACT_DETAIL
        if event.get("parse_data"):
            event["parse_data"] = {**_redact_parse_data(event["parse_data"]), "text": CONTACT_DETAIL}
        event["metadata"] = {}
    elif kind == "user":
        text = event.get("text")
        if text:
            event["text"] = redact(text)
        if event.get("parse_data"):
            already = (text, event["text"]) if text else None
            event["parse_data"] = _redact_parse_data(event["parse_data"], already)
        # Channel metadata can carry anything a client sends; none of it is needed later.
        event["metadata"] = {}
    elif kind == "bot":
        if event.get("text"):
            event["text"] = _redact_bot_text(event["text"])
    elif kind == "slot":
        if event.get("name") in ENCRYPTED_SLOTS:
            value = event.get("value")
            if not (isinstance(value, str) and value.startswith(FERNET_PREFIX)):
                event["value"] = CONTACT_DETAIL if value else value
        elif event.get("name") not in CATEGORICAL_SLOTS:
            event["value"] = _redact_value(event.get("value"))
    elif kind == "entities":
        event["entities"] = [_redact_entity(e) for e in event.get("entities") or []]
    elif kind == "session_started":
        event["metadata"] = {}
    elif kind == "user_featurization":
        pass
    if "metadata" in event and kind not in ("bot",):
        event["metadata"] = {}
    return event
