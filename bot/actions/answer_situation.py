"""After the triage form: answer from the one article that fits the person's situation."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.answers import KB_DOWN_TEXT, article_messages, open_knowledge_base, shown_slots

ARTICLE_FOR_WHAT_HAPPENED = {
    "domestic_abuse": "domestic-abuse-support-migrants",
    "sexual_violence": "sexual-violence-support",
    "hate_crime": "hate-crime-reporting",
    "modern_slavery": "modern-slavery-trafficking",
    "labour_exploitation": "labour-exploitation",
}


def choose_article(what_happened: str | None, role: str | None, immigration_fear: bool) -> str:
    """The article id for a situation. Plain rules, so they are easy to read and test."""
    if what_happened == "domestic_abuse" and immigration_fear:
        return "domestic-abuse-immigration-threats"
    if what_happened in ARTICLE_FOR_WHAT_HAPPENED:
        return ARTICLE_FOR_WHAT_HAPPENED[what_happened]
    if role == "witness":
        return "witness-rights"
    if immigration_fear:
        return "reporting-crime-with-insecure-status"
    return "victims-code-rights"


class ActionAnswerSituation(Action):
    def name(self) -> str:
        return "action_answer_situation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        kb = open_knowledge_base()
        if kb is None:
            dispatcher.utter_message(text=KB_DOWN_TEXT)
            dispatcher.utter_message(response="utter_offer_next")
            return []
        article_id = choose_article(
            tracker.get_slot("what_happened"),
            tracker.get_slot("role"),
            bool(tracker.get_slot("immigration_fear")),
        )
        article = kb.article(article_id)
        if article is None:
            dispatcher.utter_message(text=KB_DOWN_TEXT)
            return []
        for message in article_messages(article, kb, tracker.get_slot("nation")):
            dispatcher.utter_message(**message)
        return shown_slots(tracker, article.id)
