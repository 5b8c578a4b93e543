"""Knowledge articles: `knowledge/<id>.md`, YAML front matter then a markdown body.

Reading is strict about shape (so `kb check` can name every problem) and the loader is
lenient about the collection (one broken file must not take the whole bot down: the
build skips it, and `kb check` in CI fails on it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

ALLOWED_SITUATIONS = frozenset(
    {
        "danger", "domestic_abuse", "sexual_violence", "assault", "hate_crime",
        "modern_slavery", "labour_exploitation", "theft_fraud", "witness", "victim",
        "immigration_fear", "police", "healthcare", "school", "housing", "employer",
        "data_rights", "human_rights", "advice", "privacy", "scotland",
        "northern_ireland", "general",
    }
)
ALLOWED_NATIONS = ("england-wales", "scotland", "northern-ireland", "all")
# Nations a person can be in ("all" is only a property of articles and contacts).
PERSON_NATIONS = frozenset(ALLOWED_NATIONS) - {"all"}

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CONTACTS_FILE = "contacts.yml"


class ArticleError(ValueError):
    """An article file that cannot be used; `problems` lists every reason."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path.name}: " + "; ".join(problems))


@dataclass(frozen=True)
class Source:
    title: str
    url: str
    date: date


@dataclass(frozen=True)
class Article:
    """One article. Sequences are tuples: the knowledge base is shared and read-only."""

    id: str
    title: str
    summary: str
    next_step: str
    situations: tuple[str, ...]
    nations: tuple[str, ...]
    contacts: tuple[str, ...]
    keywords: tuple[str, ...]
    sources: tuple[Source, ...]
    last_reviewed: date
    body: str


# --- YAML ------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML would silently keep the last one,
    and a contact defined twice is exactly the kind of slip a reviewer misses."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_strict(text: str) -> Any:
    """Parse YAML safely, failing on duplicate mapping keys."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def as_date(value: Any) -> date | None:
    """A date from YAML (already a date, or an ISO string), else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


# --- Front matter ------------------------------------------------------------------------


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter YAML, body). Raises ValueError when the file has no front matter."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ValueError("the file must start with a '---' line (YAML front matter)")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :]).strip("\n") + "\n"
    raise ValueError("the front matter has no closing '---' line")


def _string(meta: dict, name: str, problems: list[str]) -> str:
    value = meta.get(name)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"'{name}' is missing or empty")
        return ""
    return value.strip()


def _string_list(meta: dict, name: str, problems: list[str], required: bool) -> tuple[str, ...]:
    value = meta.get(name)
    if value is None:
        if required:
            problems.append(f"'{name}' is missing")
        return ()
    # `keywords: a, b, c` is an easy slip for a list; accept it rather than fail.
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"'{name}' must be a list of words")
        return ()
    if required and not value:
        problems.append(f"'{name}' must not be empty")
    return tuple(v.strip() for v in value)


def _allowed(values: Iterable[str], allowed: Iterable[str], name: str, problems: list[str]):
    allowed = set(allowed)
    for value in values:
        if value not in allowed:
            problems.append(f"'{name}' has unknown value {value!r} (allowed: {', '.join(sorted(allowed))})")


def _sources(meta: dict, problems: list[str]) -> tuple[Source, ...]:
    raw = meta.get("sources")
    if not isinstance(raw, list) or not raw:
        problems.append("'sources' must list at least one source (title, url, date)")
        return ()
    sources = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            problems.append(f"source {number} must have title, url and date")
            continue
        title = item.get("title")
        url = item.get("url")
        when = as_date(item.get("date"))
        if not isinstance(title, str) or not title.strip():
            problems.append(f"source {number} has no title")
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url.strip()):
            problems.append(f"source {number} has no http(s) url")
        if when is None:
            problems.append(f"source {number} has no date (YYYY-MM-DD)")
        if isinstance(title, str) and isinstance(url, str) and when is not None:
            sources.append(Source(title=title.strip(), url=url.strip(), date=when))
    return tuple(sources)


def parse_article(path: Path, text: str) -> Article:
    """Validate one article file's text. Raises ArticleError listing every problem."""
    try:
        raw_meta, body = split_front_matter(text)
        meta = load_yaml_strict(raw_meta)
    except (ValueError, yaml.YAMLError) as error:
        raise ArticleError(path, [f"malformed front matter: {error}"]) from None
    if not isinstance(meta, dict):
        raise ArticleError(path, ["malformed front matter: it must be a YAML mapping"])

    problems: list[str] = []
    article_id = meta.get("id")
    if not isinstance(article_id, str) or not article_id:
        problems.append("'id' is missing")
        article_id = ""
    elif article_id != path.stem:
        problems.append(f"'id' is {article_id!r} but must equal the file name {path.stem!r}")
    elif not ID_PATTERN.match(article_id):
        problems.append(f"'id' {article_id!r} must be lowercase words joined by '-'")

    title = _string(meta, "title", problems)
    summary = _string(meta, "summary", problems)
    next_step = _string(meta, "next_step", problems)
    situations = _string_list(meta, "situations", problems, required=True)
    _allowed(situations, ALLOWED_SITUATIONS, "situations", problems)
    nations = _string_list(meta, "nations", problems, required=True)
    _allowed(nations, ALLOWED_NATIONS, "nations", problems)
    contacts = _string_list(meta, "contacts", problems, required=False)
    keywords = _string_list(meta, "keywords", problems, required=False)
    sources = _sources(meta, problems)
    last_reviewed = as_date(meta.get("last_reviewed"))
    if last_reviewed is None:
        problems.append("'last_reviewed' must be a date (YYYY-MM-DD)")
    if not body.strip():
        problems.append("the article has no body")

    if problems:
        raise ArticleError(path, problems)
    return Article(
        id=article_id,
        title=title,
        summary=summary,
        next_step=next_step,
        situations=situations,
        nations=nations,
        contacts=contacts,
        keywords=keywords,
        sources=sources,
        last_reviewed=last_reviewed,
        body=body,
    )


def read_article(path: Path) -> Article:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ArticleError(path, [f"cannot be read: {error}"]) from None
    return parse_article(path, text)


def article_paths(source_dir: Path) -> list[Path]:
    """Every article file, in a stable order. A README for the writers is not an article."""
    return sorted(p for p in Path(source_dir).glob("*.md") if p.stem.lower() != "readme")


def load_articles(source_dir: Path) -> tuple[list[Article], list[str]]:
    """(valid articles, one error line per unusable file). Duplicate ids keep the first."""
    articles: list[Article] = []
    errors: list[str] = []
    seen: set[str] = set()
    for path in article_paths(source_dir):
        try:
            article = read_article(path)
        except ArticleError as error:
            errors.append(str(error))
            continue
        if article.id in seen:
            errors.append(f"{path.name}: duplicate id {article.id!r}")
            continue
        seen.add(article.id)
        articles.append(article)
    return articles, errors
