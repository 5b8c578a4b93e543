"""/forget: delete this conversation now.

The deletion itself happens in the conversation store (bot.tracker_store), which drops
every event of a conversation in which this action has run, instead of saving it.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ActionForgetConversation(Action):
    def name(self) -> str:
        return "action_forget_conversation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_forgotten")
        return []
