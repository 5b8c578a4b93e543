"""The two-stage fallback: offer the likely readings as plain buttons, then search."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.answer_question import question_text
from bot.actions.answers import NEXT_BUTTONS, article_messages, open_knowledge_base, shown_slots

# What each intent means, in the person's words, for "Did you mean…?" buttons.
INTENT_BUTTON_TITLES = {
    "emergency": "I am in danger now",
    "domestic_abuse": "Abuse by a partner or family",
    "report_crime_victim": "Something happened to me",
    "witness_crime": "I saw a crime",
    "fear_immigration_enforcement": "I'm worried about the Home Office",
    "help_someone_else": "I'm asking for someone else",
    "ask_question": "I have a question",
    "request_human": "I want to talk to a person",
    "forget_conversation": "Delete this conversation",
    "bot_challenge": "Who am I talking to?",
}


class ActionDefaultAskAffirmation(Action):
    """First stage: "Did you mean…?" with up to two likely readings."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        ranking = (tracker.latest_message or {}).get("intent_ranking") or []
        buttons = [
            {"title": INTENT_BUTTON_TITLES[r["name"]], "payload": f"/{r['name']}"}
            for r in ranking
            if r.get("name") in INTENT_BUTTON_TITLES
        ][:2]
        buttons.append({"title": "Something else", "payload": "/out_of_scope"})
        dispatcher.utter_message(
            text="Sorry, I'm not sure I understood. Did you mean one of these?", buttons=buttons
        )
        return []


class ActionDefaultFallback(Action):
    """Second stage: look the words up in the knowledge base, else offer the advice line."""

    def name(self) -> str:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        text = question_text(tracker)
        kb = open_knowledge_base()
        results = kb.search(text, limit=1) if (kb is not None and text) else []
        if results:
            article = kb.article(results[0].id)
            if article is not None:
                dispatcher.utter_message(text="I'm not sure I understood, but this may help.")
                for message in article_messages(article, kb, tracker.get_slot("nation")):
                    dispatcher.utter_message(**message)
                return [UserUtteranceReverted(), *shown_slots(tracker, article.id)]
        dispatcher.utter_message(
            text=(
                "Sorry, I still don't understand. You could try other words, or talk to a "
                "person at Liberty's advice line. If you are in danger now, call 999."
            ),
            buttons=NEXT_BUTTONS,
        )
        return [UserUtteranceReverted()]
