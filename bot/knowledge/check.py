"""`kb check`: everything a reviewer would otherwise have to catch by eye.

Errors (CI fails): malformed front matter, unknown or unlisted contacts, phone numbers
written into text instead of `{{contact:KEY}}`, dead `article:` links, unknown
placeholders, broken contacts.yml entries, duplicate ids, and numbers in domain.yml
responses that are not in the registry.
Warnings: a review older than 12 months, a source older than 5 years.

Why phone numbers are errors: a number typed into an article is a number nobody keeps
up to date. The registry has one copy, with its source and date, and the bot says
whether the line is open now. Only the universal UK numbers (999, 101, 111, the
silent-call 55 and text relay 18000) may be written as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import yaml

from bot.knowledge.articles import (
    CONTACTS_FILE,
    Article,
    ArticleError,
    article_paths,
    read_article,
)
from bot.knowledge.contacts import (
    LONDON,
    UNIVERSAL_NUMBERS,
    Contact,
    digits,
    load_contacts,
    to_london,
)
from bot.knowledge.render import SETTING_PLACEHOLDERS

REVIEW_MAX_MONTHS = 12
SOURCE_MAX_YEARS = 5

_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_VALID_PLACEHOLDER = re.compile(
    r"^\s*(?:contact:\s*(?P<contact>[A-Za-z0-9_\-]+)|setting:\s*(?P<setting>[A-Za-z0-9_]+)"
    r"|(?P<advice>advice_line))\s*$"
)
_ANY_ARTICLE_LINK = re.compile(r"\]\(\s*article:([^)]*)\)")
_URL = re.compile(r"(?:https?://|www\.)\S+|\]\([^)]*\)")
# A run of digits that may be grouped with single spaces or hyphens: "0808 2000 247".
_NUMBER_RUN = re.compile(r"(?<![\w£$€.,/])\+?\d(?:[ \-]?\d)*(?![\w%/]|[.,]\d)")
_CALL_WORDS = re.compile(
    r"\b(?:call|calls|calling|phone|ring|text|dial|telephone|tel|freephone|helpline)(?: on)?\s+$",
    re.IGNORECASE,
)
# "call 24 hours a day" is about time, not a number to call.
_UNIT_AFTER = re.compile(
    r"^\s*(?:/|hours?|days?|weeks?|months?|years?|minutes?|times?|people)\b", re.IGNORECASE
)
_YEAR_RANGE = re.compile(r"^(?:19|20)\d\d\s*-\s*(?:(?:19|20)?\d\d)$")


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"ERROR   {e}" for e in self.errors] + [f"WARNING {w}" for w in self.warnings]
        lines.append(f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join(lines)


# --- Phone numbers in text ------------------------------------------------------------------


def phone_like_numbers(text: str) -> list[str]:
    """Digit runs in text that look like phone numbers (as written).

    Phone-like: 5 or more digits, or a run starting with 0 or + with 3 or more, or any run
    of 2 or more right after "call", "text", "ring"... Years, year ranges, ages and
    counts ("26 months", "Article 8", "2018") are not phone-like.
    """
    text = _ANY_PLACEHOLDER.sub(" ", text)
    text = _URL.sub(" ", text)
    found = []
    for match in _NUMBER_RUN.finditer(text):
        run = match.group(0).strip(" -")
        count = len(digits(run))
        if _YEAR_RANGE.match(run):
            continue
        if count >= 5 or (run[0] in "0+" and count >= 3) or (
            count >= 2 and _after_call_word(text, match)
        ):
            found.append(run)
    return found


def _after_call_word(text: str, match: re.Match) -> bool:
    """"call 112" or "text 85258", but not "call 24 hours a day"."""
    before = text[max(0, match.start() - 20) : match.start()]
    after = text[match.end() : match.end() + 12]
    return bool(_CALL_WORDS.search(before)) and not _UNIT_AFTER.match(after)


def normalise_number(number: str) -> str:
    """Digits only, with +44 / 0044 written as a leading 0."""
    value = digits(number)
    for prefix in ("0044", "44"):
        if number.strip().startswith(("+", "00")) and value.startswith(prefix):
            return "0" + value[len(prefix) :]
    return value


def _unknown_numbers(text: str, registry_numbers: frozenset[str]) -> tuple[list[str], list[str]]:
    """(numbers in no registry entry, registry numbers written out instead of a placeholder)."""
    unknown, literal = [], []
    for number in phone_like_numbers(text):
        value = normalise_number(number)
        if value in UNIVERSAL_NUMBERS:
            continue
        (literal if value in registry_numbers else unknown).append(number)
    return unknown, literal


# --- Dates --------------------------------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


# --- Articles -------------------------------------------------------------------------------


def _check_placeholders(article: Article, contacts: dict[str, Contact], name: str,
                        report: CheckReport) -> None:
    listed = set(article.contacts)
    for key in article.contacts:
        if key not in contacts:
            report.errors.append(f"{name}: contacts lists unknown contact {key!r}")
    for match in _ANY_PLACEHOLDER.finditer(article.body):
        parsed = _VALID_PLACEHOLDER.match(match.group(1))
        if parsed is None:
            report.errors.append(f"{name}: unknown placeholder {match.group(0)!r}")
        elif parsed.group("contact"):
            key = parsed.group("contact")
            if key not in contacts:
                report.errors.append(f"{name}: {match.group(0)} is not in contacts.yml")
            elif key not in listed:
                report.errors.append(f"{name}: {match.group(0)} is used but not listed in 'contacts'")
        elif parsed.group("setting") and parsed.group("setting") not in SETTING_PLACEHOLDERS:
            allowed = ", ".join(sorted(SETTING_PLACEHOLDERS))
            report.errors.append(
                f"{name}: unknown setting {match.group(0)} (allowed: {allowed})"
            )
    # Single braces or an unclosed "{{" are slips that would be shown to the person.
    leftover = _ANY_PLACEHOLDER.sub("", article.body)
    if "{{" in leftover or "}}" in leftover:
        report.errors.append(f"{name}: unbalanced '{{{{' or '}}}}' in the body")


def _check_plain_fields(article: Article, name: str, report: CheckReport) -> None:
    """The title is shown exactly as written (buttons, page titles, source payloads), so a
    placeholder there would reach the person as "{{...}}". The answering actions render
    summary and next step like the body (bot/actions/answers.py)."""
    for part in ("title",):
        if "{{" in getattr(article, part) or "}}" in getattr(article, part):
            report.errors.append(
                f"{name}: '{part}' is shown as written; placeholders only work in the body"
            )


def _check_links(article: Article, ids: set[str], name: str, report: CheckReport) -> None:
    for target in _ANY_ARTICLE_LINK.findall(article.body):
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", target):
            # render.py would leave it as raw markdown: "(article: x)" shown to a person.
            report.errors.append(f"{name}: malformed link article:{target} (use [text](article:ID))")
        elif target not in ids:
            report.errors.append(f"{name}: dead link article:{target}")


def _check_numbers(article: Article, registry_numbers: frozenset[str], name: str,
                   report: CheckReport) -> None:
    for part, text in (("summary", article.summary), ("next_step", article.next_step),
                       ("body", article.body)):
        unknown, literal = _unknown_numbers(text, registry_numbers)
        for number in unknown:
            report.errors.append(
                f"{name}: phone number {number!r} in the {part} is not in contacts.yml "
                "(add it to the registry and use {{contact:KEY}})"
            )
        for number in literal:
            report.warnings.append(
                f"{name}: {number!r} is written out in the {part}; use {{{{contact:KEY}}}} so "
                "it shows whether the line is open"
            )


def _check_dates(article: Article, today: date, name: str, report: CheckReport) -> None:
    if article.last_reviewed < _years_before(today, REVIEW_MAX_MONTHS // 12):
        report.warnings.append(
            f"{name}: last reviewed {article.last_reviewed}, more than {REVIEW_MAX_MONTHS} months ago"
        )
    if article.last_reviewed > today:
        report.warnings.append(f"{name}: last_reviewed {article.last_reviewed} is in the future")
    oldest = _years_before(today, SOURCE_MAX_YEARS)
    for source in article.sources:
        if source.date < oldest:
            report.warnings.append(
                f"{name}: source {source.title!r} is dated {source.date}, "
                f"more than {SOURCE_MAX_YEARS} years ago"
            )


def _read_articles(source_dir: Path, report: CheckReport) -> list[Article]:
    articles: list[Article] = []
    seen: dict[str, str] = {}
    for path in article_paths(source_dir):
        try:
            article = read_article(path)
        except ArticleError as error:
            report.errors.append(str(error))
            continue
        if article.id in seen:
            report.errors.append(f"{path.name}: duplicate id {article.id!r} (also {seen[article.id]})")
            continue
        seen[article.id] = path.name
        articles.append(article)
    return articles


# --- domain.yml ----------------------------------------------------------------------------


def _response_texts(domain: dict) -> list[tuple[str, str]]:
    """(response name, text) for every text and button title in domain.yml responses."""
    texts = []
    for name, variants in (domain.get("responses") or {}).items():
        for variant in variants or []:
            if not isinstance(variant, dict):
                continue
            if isinstance(variant.get("text"), str):
                texts.append((name, variant["text"]))
            for button in variant.get("buttons") or []:
                if isinstance(button, dict) and isinstance(button.get("title"), str):
                    texts.append((name, button["title"]))
    return texts


def check_domain(domain_path: Path, registry_numbers: frozenset[str], report: CheckReport) -> None:
    if not domain_path.exists():
        return
    try:
        domain = yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        report.errors.append(f"{domain_path.name}: cannot be read: {error}")
        return
    if not isinstance(domain, dict):
        return
    for name, text in _response_texts(domain):
        unknown, literal = _unknown_numbers(text, registry_numbers)
        for number in unknown:
            report.errors.append(
                f"{domain_path.name}: response {name} gives {number!r}, which is not in contacts.yml"
            )


# --- Everything -------------------------------------------------------------------------------


def check_knowledge(source_dir: Path, now: datetime | None = None,
                    domain_path: Path | None = None) -> CheckReport:
    """Check every article, contacts.yml and domain.yml responses.

    domain_path defaults to `domain.yml` beside the source folder (the project root for
    `knowledge/`); a missing domain.yml is skipped.
    """
    source_dir = Path(source_dir)
    report = CheckReport()
    today = to_london(now or datetime.now(LONDON)).date()
    if not source_dir.is_dir():
        report.errors.append(f"{source_dir} is not a folder")
        return report

    contacts, contact_errors, contact_warnings = load_contacts(source_dir / CONTACTS_FILE)
    report.errors.extend(contact_errors)
    report.warnings.extend(contact_warnings)
    for contact in contacts.values():
        if contact.source_date and contact.source_date < _years_before(today, SOURCE_MAX_YEARS):
            report.warnings.append(
                f"{CONTACTS_FILE}: contact {contact.key!r} source is dated {contact.source_date}, "
                f"more than {SOURCE_MAX_YEARS} years ago"
            )
    registry_numbers = frozenset(n for c in contacts.values() for n in c.numbers)

    articles = _read_articles(source_dir, report)
    ids = {a.id for a in articles}
    for article in articles:
        name = f"{article.id}.md"
        _check_placeholders(article, contacts, name, report)
        _check_plain_fields(article, name, report)
        _check_links(article, ids, name, report)
        _check_numbers(article, registry_numbers, name, report)
        _check_dates(article, today, name, report)

    check_domain(domain_path or source_dir.parent / "domain.yml", registry_numbers, report)
    return report
