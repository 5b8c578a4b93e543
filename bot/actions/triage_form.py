"""Validation of the triage form: ask only what is still missing and matters.

- Danger first: when what happened to them involves violence or abuse, "Are you safe right now?"
  comes before anything else, and "No" or "Not sure" gets the emergency numbers at once.
- What happened: only when we do not know it yet (witnesses are not asked).
- Where: only when the answer differs by nation (helplines for abuse and sexual violence).
Every question can be skipped; immigration status is never asked.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

VIOLENT = {"domestic_abuse", "sexual_violence", "assault", "hate_crime", "modern_slavery"}
NATION_MATTERS = {"domestic_abuse", "sexual_violence"}


def triage_questions(what_happened: str | None, role: str | None, danger_now: str | None,
                     nation: str | None) -> list[str]:
    """The slots still worth asking for, in the order to ask them."""
    needed: list[str] = []
    # "Are you safe right now?" is about the person typing: not asked of witnesses or of
    # someone asking for a friend (danger to others is caught by the safety net).
    if what_happened in VIOLENT and role not in ("witness", "someone_else") and danger_now is None:
        needed.append("danger_now")
    if what_happened is None and role != "witness":
        needed.append("what_happened")
    if what_happened in NATION_MATTERS and nation is None:
        needed.append("nation")
    return needed


class ValidateTriageForm(FormValidationAction):
    def name(self) -> str:
        return "validate_triage_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        return triage_questions(
            tracker.get_slot("what_happened"),
            tracker.get_slot("role"),
            tracker.get_slot("danger_now"),
            tracker.get_slot("nation"),
        )

    def validate_danger_now(self, value: Any, dispatcher: CollectingDispatcher,
                            tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if value in ("not_safe", "unsure"):
            dispatcher.utter_message(response="utter_emergency")
            dispatcher.utter_message(response="utter_emergency_next")
        return {"danger_now": value}
