"""Answer a free question from the knowledge base, or say honestly that we have no answer."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.answers import (
    KB_DOWN_TEXT,
    NEXT_BUTTONS,
    article_messages,
    open_knowledge_base,
    shown_slots,
    situation_tags,
)

NO_ANSWER_TEXT = (
    "I'm sorry, I don't have good information about that. "
    "A person at Liberty's advice line may be able to help."
)


def question_text(tracker: Tracker) -> str:
    """The person's own words, or "" when they pressed a button such as "/ask_question"."""
    text = (tracker.latest_message or {}).get("text") or ""
    return "" if text.startswith("/") else text.strip()


class ActionAnswerQuestion(Action):
    def name(self) -> str:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        question = question_text(tracker)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if intent == "fear_immigration_enforcement":
            dispatcher.utter_message(response="utter_acknowledge_fear")
        if not question:
            dispatcher.utter_message(response="utter_ask_question_prompt")
            return []
        kb = open_knowledge_base()
        if kb is None:
            dispatcher.utter_message(text=KB_DOWN_TEXT)
            return []
        situations = situation_tags(tracker)
        if intent == "fear_immigration_enforcement" and "immigration_fear" not in situations:
            situations.append("immigration_fear")
        nation = tracker.get_slot("nation")
        results = kb.search(question, situations=situations, nation=nation, limit=3)
        article = kb.article(results[0].id) if results else None
        if article is None:
            dispatcher.utter_message(text=NO_ANSWER_TEXT, buttons=NEXT_BUTTONS)
            return []
        for message in article_messages(article, kb, nation):
            dispatcher.utter_message(**message)
        return shown_slots(tracker, article.id)
