"""Validation of the handoff form: ask only what fits the way of contact chosen.

The contact detail is encrypted here, the moment it arrives, and only the token and a
masked form ("ending 123") are kept in the conversation. Every question can be skipped.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.privacy.crypto import encrypt, mask

REACHABLE = {"phone", "text", "email"}


def handoff_questions(contact_method: str | None) -> list[str]:
    """The slots still worth asking for, in order, for this way of contact."""
    needed = ["contact_method"]
    if contact_method in REACHABLE:
        needed += ["contact_detail", "safe_times"]
    if contact_method in ("phone", "text"):
        needed.append("may_leave_message")
    if contact_method == "phone":
        needed.append("may_say_who")
    return needed


class ValidateHandoffForm(FormValidationAction):
    def name(self) -> str:
        return "validate_handoff_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        return handoff_questions(tracker.get_slot("contact_method"))

    def validate_contact_detail(self, value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if not value or value == "skipped":
            return {"contact_detail": "skipped", "contact_detail_masked": None}
        method = tracker.get_slot("contact_method") or "phone"
        detail = str(value).strip()[:200]
        return {"contact_detail": encrypt(detail), "contact_detail_masked": mask(detail, method)}

    def validate_safe_times(self, value: Any, dispatcher: CollectingDispatcher,
                            tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        from bot.privacy.pii import redact

        return {"safe_times": redact(str(value))[:200] if value else "skipped"}
