"""Placeholders in article bodies → the text a person reads.

- `{{contact:KEY}}`  → `Contact.describe(now)`: name, number, free, open now or when it opens.
- `{{advice_line}}`  → `advice_line_text(settings, now)`.
- `{{setting:NAME}}` → the setting's value, for the retention settings only (a
  whitelist: an article must never be able to print a secret such as the encryption key).
- `[text](article:ID)` → `text` by default (chat messages have no page to link to), or
  `[text](#article-ID)` with `links="anchor"` for a page that renders markdown and
  gives each article the anchor `article-ID`.
A placeholder whose contact is unknown renders as nothing, and a list item left empty
by that is dropped: better a shorter list than a broken line (`kb check` reports it).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from bot.knowledge.articles import Article
from bot.knowledge.contacts import LONDON, Contact, HoursError, parse_hours_spec
from bot.settings import Settings

log = logging.getLogger(__name__)

SETTING_PLACEHOLDERS = frozenset(
    {"conversation_retention_hours", "handoff_retention_days", "inbox_retention_days"}
)
# What we say when no advice-line number is configured. Never a phone number: we do not
# know Liberty's, and a wrong number given to a frightened person is worse than none.
ADVICE_LINE_UNCONFIGURED = (
    "Liberty's Advice and Information service: find it on Liberty's website, "
    "libertyhumanrights.org.uk, under 'Get advice'"
)

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)(?::\s*([A-Za-z0-9_\-]+))?\s*\}\}")
ARTICLE_LINK = re.compile(r"\[([^\]]+)\]\(article:([A-Za-z0-9_\-]+)\)")
_EMPTY_LIST_ITEM = re.compile(r"^[ \t]*[-*][ \t]*$\n?", re.MULTILINE)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(LONDON)


def advice_line_text(settings: Settings, now: datetime | None = None) -> str:
    """How to reach Liberty's advice line, from settings only."""
    line = settings.advice_line
    if not line.configured:
        return ADVICE_LINE_UNCONFIGURED
    try:
        hours = parse_hours_spec(line.hours)
    except HoursError as error:
        # A typo in ADVICE_LINE_HOURS must not stop the number being given.
        log.warning("ADVICE_LINE_HOURS cannot be read: %s", error)
        hours = parse_hours_spec("")
    contact = Contact(key="advice_line", name=line.name, phone=line.phone, web=line.web,
                      hours=hours)
    text = contact.describe(_now(now))
    if line.phone and line.web:
        text += f". Online: {line.web}"
    if hours.known and not hours.is_24_7:
        text += f". Opening hours (UK time): {hours.summary()}"
    return text


def _contact_text(key: str, kb, now: datetime) -> str:
    contact = kb.contact(key)
    if contact is None:
        log.warning("Article uses unknown contact %r", key)
        return ""
    return contact.describe(now)


def _setting_text(name: str, settings: Settings) -> str:
    if name not in SETTING_PLACEHOLDERS:
        log.warning("Article uses unknown setting %r", name)
        return ""
    return str(getattr(settings, name))


def render_text(text: str, kb, settings: Settings, now: datetime | None = None,
                *, links: str = "text") -> str:
    """Replace every placeholder and internal link in a piece of article markdown."""
    now = _now(now)

    def placeholder(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind == "contact" and argument:
            return _contact_text(argument, kb, now)
        if kind == "advice_line" and not argument:
            return advice_line_text(settings, now)
        if kind == "setting" and argument:
            return _setting_text(argument, settings)
        log.warning("Unknown placeholder %r", match.group(0))
        return ""

    def link(match: re.Match) -> str:
        label, target = match.group(1), match.group(2)
        return f"[{label}](#article-{target})" if links == "anchor" else label

    text = PLACEHOLDER.sub(placeholder, text)
    text = ARTICLE_LINK.sub(link, text)
    return _EMPTY_LIST_ITEM.sub("", text)


def render_article_body(article: Article, kb, settings: Settings,
                        now: datetime | None = None, *, links: str = "text") -> str:
    """The article's body with placeholders replaced (markdown, ready to show)."""
    return render_text(article.body, kb, settings, now, links=links)


def _day(day) -> str:
    return f"{day.day} {day:%B %Y}"  # "1 March 2020", not "01 March 2020"


def render_article(article: Article, kb, settings: Settings, now: datetime | None = None) -> str:
    """The whole article as markdown: title, summary, next step, body, sources."""
    sources = "\n".join(f"- {s.title} ({_day(s.date)}): {s.url}" for s in article.sources)
    return (
        f"# {article.title}\n\n{article.summary}\n\n"
        f"**What you can do next:** {article.next_step}\n\n"
        f"{render_article_body(article, kb, settings, now).strip()}\n\n"
        f"## Sources\n{sources}\n\n"
        f"Checked {_day(article.last_reviewed)}. This is information, not legal advice.\n"
    )
