"""Tell the person how to reach Liberty's advice line, from settings only."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.answers import always_open_text, now_in_london
from bot.settings import get_settings


class ActionAdviceLine(Action):
    def name(self) -> str:
        return "action_advice_line"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        from bot.knowledge.render import advice_line_text

        settings = get_settings()
        now = now_in_london()
        dispatcher.utter_message(text=advice_line_text(settings, now))
        always = always_open_text(tracker.get_slot("nation"), "These lines are open day and night", now)
        if always:
            dispatcher.utter_message(text=always)
        dispatcher.utter_message(
            text="Can I help with anything else?",
            buttons=[
                {"title": "Ask something else", "payload": "/ask_question"},
                {"title": "I'm done", "payload": "/goodbye"},
            ],
        )
        return []
