"""How an article becomes chat messages. Shared by the answering actions.

An answer is at most three messages: the short version and the next step; who can help
(open now or not, with 24/7 lines when others are closed); the source, its date and
"information, not legal advice", with a `custom` payload the web page renders as links.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.settings import Settings, get_settings

LONDON = ZoneInfo("Europe/London")
logger = logging.getLogger(__name__)

NEXT_BUTTONS = [
    {"title": "Ask something else", "payload": "/ask_question"},
    {"title": "Talk to Liberty's advice line", "payload": "/request_human"},
    {"title": "I'm done", "payload": "/goodbye"},
]

KB_DOWN_TEXT = (
    "Sorry, I can't look that up right now. If you are in danger, call 999. "
    "Please try again in a few minutes."
)


def now_in_london() -> datetime:
    return datetime.now(LONDON)


def open_knowledge_base(settings: Settings | None = None):
    """The knowledge base, or None when it cannot be opened (the caller says so calmly)."""
    from bot.knowledge import KnowledgeBase, KnowledgeBaseUnavailable

    settings = settings or get_settings()
    try:
        return KnowledgeBase.open(settings.knowledge_db)
    except KnowledgeBaseUnavailable as error:
        # Loud in the log (the person gets the calm KB_DOWN_TEXT): the message says what
        # is wrong with the file and how to rebuild it; it never holds a person's words.
        logger.error("Knowledge base unavailable: %s", error)
        return None


def contacts_for(article, kb, nation: str | None) -> list:
    contacts = [kb.contact(key) for key in article.contacts]
    contacts = [c for c in contacts if c is not None]
    if nation in ("england-wales", "scotland", "northern-ireland"):
        local = [c for c in contacts if "all" in c.nations or nation in c.nations]
        contacts = local or contacts
    return contacts


def article_messages(article, kb, nation: str | None = None,
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """The messages (kwargs for dispatcher.utter_message) that answer with one article."""
    from bot.knowledge.render import render_text

    now = now or now_in_london()
    settings = get_settings()
    summary = render_text(article.summary, kb, settings, now)
    next_step = render_text(article.next_step, kb, settings, now)
    messages: list[dict[str, Any]] = [{"text": f"{summary}\n\nWhat you can do next: {next_step}"}]
    contacts = contacts_for(article, kb, nation)
    lines = [c.describe(now) for c in contacts[:4]]
    if any(c.is_open(now) is False for c in contacts[:4]):
        always = [c for c in kb.always_open_contacts(nation) if c not in contacts[:4]]
        if always:
            lines.append("Open now, day and night:")
            lines.extend(c.describe(now) for c in always[:2])
    if lines:
        messages.append({"text": "Who can help:\n" + "\n".join(f"- {line}" for line in lines)})
    source_titles = "; ".join(s.title for s in article.sources[:2])
    messages.append(
        {
            "text": (
                f"Source: {source_titles}. Checked {article.last_reviewed:%d %B %Y}. "
                "This is information, not legal advice."
            ),
            "json_message": article_payload(article),
            "buttons": NEXT_BUTTONS,
        }
    )
    return messages


def article_payload(article) -> dict[str, Any]:
    return {
        "article_id": article.id,
        "title": article.title,
        "sources": [
            {"title": s.title, "url": s.url, "date": str(s.date)} for s in article.sources
        ],
        "last_reviewed": str(article.last_reviewed),
    }


def shown_slots(tracker, article_id: str) -> list:
    from rasa_sdk.events import SlotSet

    shown = list(tracker.get_slot("articles_shown") or [])
    if article_id not in shown:
        shown.append(article_id)
    return [SlotSet("articles_shown", shown), SlotSet("last_article", article_id)]


def situation_tags(tracker) -> list[str]:
    """The knowledge-base situation tags that match what we know about the person."""
    tags = []
    what = tracker.get_slot("what_happened")
    if what and what not in ("other", "skipped"):
        tags.append(what)
    if tracker.get_slot("role") == "witness":
        tags.append("witness")
    if tracker.get_slot("immigration_fear"):
        tags.append("immigration_fear")
    service = tracker.get_slot("service")
    if service:
        tags.append({"health": "healthcare", "employer": "employer"}.get(service, service))
    return tags


def always_open_text(nation: str | None, intro: str, now: datetime | None = None) -> str | None:
    """"<intro>:" and the two lines open day and night for this nation, or None without a KB."""
    kb = open_knowledge_base()
    if kb is None:
        return None
    now = now or now_in_london()
    always = kb.always_open_contacts(nation)[:2]
    if not always:
        return None
    return f"{intro}:\n" + "\n".join(f"- {c.describe(now)}" for c in always)
