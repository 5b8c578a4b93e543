"""Before anything is kept: say what is passed on, to whom, for how long; ask for a yes."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import get_settings


def explanation(retention_days: int) -> str:
    return (
        "I can pass a short summary of your situation, and this chat with names, numbers "
        "and addresses taken out, to Liberty's advice line. Only to them: never to the "
        "police, never to the Home Office.\n\n"
        "If you want, you can also leave a safe way for them to contact you. It is locked "
        "(encrypted) so only the advice line can read it.\n\n"
        f"They keep it while they help you, and it is deleted {retention_days} days after "
        "they close it. Do you want me to pass it on?"
    )


class ActionExplainHandoff(Action):
    def name(self) -> str:
        return "action_explain_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(
            text=explanation(get_settings().handoff_retention_days),
            buttons=[
                {"title": "Yes, pass it on", "payload": "/affirm"},
                {"title": "No, thank you", "payload": "/deny"},
            ],
        )
        return []
