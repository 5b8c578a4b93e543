"""Create the handoff record, then confirm it back with the reference code."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.answers import always_open_text, now_in_london
from bot.privacy.crypto import decrypt
from bot.privacy.pii import redact
from bot.settings import get_settings

SITUATION_SLOTS = ("role", "what_happened", "danger_now", "immigration_fear", "service")
METHOD_WORDS = {"phone": "a phone call", "text": "a text message", "email": "email"}


def transcript(tracker: Tracker) -> list[dict[str, str]]:
    """This session's messages, redacted again here (the stored ones already are)."""
    lines = []
    for event in tracker.events:
        text = event.get("text")
        if not text or text.startswith("/"):
            continue
        if event.get("event") == "user":
            lines.append({"speaker": "person", "text": redact(text)})
        elif event.get("event") == "bot":
            lines.append({"speaker": "bot", "text": redact(text)})
    return lines[-60:]


def confirmation(reference: str, method: str | None, masked: str | None,
                 safe_times: str | None) -> str:
    parts = [f"Thank you. Your reference is {reference}. Please keep it safe."]
    if method in METHOD_WORDS and masked:
        parts.append(f"The advice line will contact you by {METHOD_WORDS[method]}, {masked}.")
    elif method == "self":
        parts.append("You said you will contact them yourself. Give them this reference.")
    else:
        parts.append("You did not leave a way to contact you. Give them this reference.")
    if safe_times and safe_times != "skipped":
        parts.append(f"Safe times: {safe_times}.")
    return " ".join(parts)


class ActionSubmitHandoff(Action):
    def name(self) -> str:
        return "action_submit_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        from bot.handoff import HandoffRequest, HandoffStore
        from bot.knowledge.render import advice_line_text

        settings = get_settings()
        token = tracker.get_slot("contact_detail")
        detail = decrypt(token) if token and token != "skipped" else None
        method = tracker.get_slot("contact_method") or "none"
        request = HandoffRequest(
            nation=tracker.get_slot("nation"),
            situation={slot: tracker.get_slot(slot) for slot in SITUATION_SLOTS},
            articles_shown=list(tracker.get_slot("articles_shown") or []),
            transcript=transcript(tracker),
            contact_method=method,
            contact_detail=detail,
            safe_times=tracker.get_slot("safe_times"),
            may_leave_message=tracker.get_slot("may_leave_message") or "unknown",
            may_say_who=tracker.get_slot("may_say_who") or "unknown",
        )
        try:
            with HandoffStore() as store:  # closes its connection (or pool) at once
                reference = store.create(request)
        except Exception as error:  # the person must hear that it failed, calmly
            import logging

            logging.getLogger(__name__).error("Handoff not saved: %s", type(error).__name__)
            dispatcher.utter_message(
                text="Sorry, I could not pass this on just now. Please try again later, "
                "or contact the advice line yourself. If you are in danger, call 999."
            )
            return []
        masked = tracker.get_slot("contact_detail_masked")
        dispatcher.utter_message(
            text=confirmation(reference, method, masked, tracker.get_slot("safe_times"))
        )
        now = now_in_london()
        dispatcher.utter_message(text=advice_line_text(settings, now))
        always = always_open_text(
            tracker.get_slot("nation"),
            "If you need help before then, these lines are open day and night", now,
        )
        if always:
            dispatcher.utter_message(text=always)
        # The token has done its job; the record holds the encrypted detail now.
        return [SlotSet("handoff_reference", reference), SlotSet("contact_detail", None)]
