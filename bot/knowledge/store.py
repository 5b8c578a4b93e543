"""Build `DATA_DIR/knowledge.db` from `knowledge/`, and open it read-only.

Tables: `articles` (one row per article, with plain-text columns for the index),
`contacts`, `synonyms` (users' words → search terms), `meta` (schema version and a hash
of the sources, so `is_stale` can tell when to rebuild) and the FTS5 index
`articles_fts` (porter stemming, external content = `articles`).

The build writes a temporary file beside the target and `os.replace`s it, so a reader
never sees a half-built database and a failed build leaves the old one in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import sqlite_utils
import yaml

from bot.knowledge.articles import CONTACTS_FILE, Article, article_paths, load_articles
from bot.knowledge.contacts import Contact, load_contacts
from bot.knowledge.render import PLACEHOLDER

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
SYNONYMS_FILE = Path(__file__).with_name("synonyms.yml")
BUILD_CODE = tuple(Path(__file__).with_name(n) for n in ("store.py", "articles.py", "contacts.py"))
# The indexed columns, in the order bm25() weights refer to them.
FTS_COLUMNS = ("title", "summary", "keywords_text", "next_step", "body_text")


class KnowledgeBaseUnavailable(RuntimeError):
    """The knowledge base file is missing or unreadable; the message says what to do."""


# --- Turning an article into indexable text ----------------------------------------------

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_STANDARD_HEADING = re.compile(
    r"^#+\s*(?:What this means for you|What you can do|Who can help)\s*$", re.MULTILINE | re.IGNORECASE
)


def plain_text(markdown: str, contacts: dict[str, Contact]) -> str:
    """The words a reader sees, for the index: contact placeholders become the contact's
    name (so "rape crisis number" finds the article that lists Rape Crisis); other
    placeholders, standard headings and markdown syntax go."""

    def placeholder(match: re.Match) -> str:
        kind, key = match.group(1), match.group(2)
        if kind == "contact" and key in contacts:
            return contacts[key].name
        # {{advice_line}} is in most articles: indexing its words would make "Liberty"
        # and "advice" useless for finding the one article about the advice line.
        return ""

    text = PLACEHOLDER.sub(placeholder, markdown)
    text = _LINK.sub(r"\1", text)
    # The standard headings are in every article: they tell search nothing.
    text = _STANDARD_HEADING.sub("", text)
    text = re.sub(r"^#+\s*", "", text, flags=re.MULTILINE)
    text = re.sub(r"[*_`>]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


ARTICLE_COLUMNS = {
    name: str
    for name in (
        "id", "title", "summary", "next_step", "situations", "nations", "contacts",
        "keywords", "sources", "last_reviewed", "body", "situation_tags", "nation_tags",
        "keywords_text", "body_text",
    )
}


def article_record(article: Article, contacts: dict[str, Contact]) -> dict:
    return {
        "id": article.id,
        "title": article.title,
        "summary": article.summary,
        "next_step": article.next_step,
        "situations": json.dumps(list(article.situations)),
        "nations": json.dumps(list(article.nations)),
        "contacts": json.dumps(list(article.contacts)),
        "keywords": json.dumps(list(article.keywords)),
        "sources": json.dumps(
            [{"title": s.title, "url": s.url, "date": s.date.isoformat()} for s in article.sources]
        ),
        "last_reviewed": article.last_reviewed.isoformat(),
        "body": article.body,
        # Comma-delimited so the boost can test membership with instr(',tag,').
        "situation_tags": "," + ",".join(article.situations) + ",",
        "nation_tags": "," + ",".join(article.nations) + ",",
        "keywords_text": " ; ".join(article.keywords),
        "body_text": plain_text(article.body, contacts),
    }


CONTACT_COLUMNS = {
    "key": str, "name": str, "phone": str, "text": str, "web": str, "hours": str,
    "nations": str, "free": int, "notes": str, "source": str, "source_date": str,
}


def _contact_row(contact: Contact) -> dict:
    record = contact.to_record()
    record["hours"] = json.dumps(record["hours"])
    record["nations"] = json.dumps(record["nations"])
    return record


def _contact_from_row(row: dict) -> Contact:
    record = dict(row)
    record["hours"] = json.loads(record["hours"] or "{}")
    record["nations"] = json.loads(record["nations"] or '["all"]')
    return Contact.from_record(record)


# --- Smoothing the index's word statistics -------------------------------------------------

FILLER_TOKEN = "zzfillerzz"


def filler_row_count(articles: int) -> int:
    """Two filler rows per article, up to 1000 (big collections do not need them)."""
    return min(2 * articles, 1000)


def add_filler_rows(conn: sqlite3.Connection, articles: int) -> None:
    """Add filler rows to the index (not to `articles`) so every real word is rarer.

    FTS5's bm25 gives a word no weight at all once it is in more than half of the rows
    (its idf is clamped to ~0). With a few dozen articles, words such as "Scotland",
    "Liberty" or "police" are in most bodies, so even the article *titled* "If you live
    in Scotland" got nothing for "scotland". Filler rows of average length, made of one
    token nobody searches for, add pseudo-documents to the idf (a standard smoothing):
    common words keep a small weight, rare words still weigh most, and the lengths
    bm25 normalises by are unchanged. The rows have negative rowids, which no article
    has, so the join with `articles` never returns them.
    """
    count = filler_row_count(articles)
    if count == 0:
        return
    conn.execute("CREATE VIRTUAL TABLE temp.fts_columns USING fts5vocab(main, articles_fts, 'col')")
    totals = dict(conn.execute("SELECT col, sum(cnt) FROM temp.fts_columns GROUP BY col"))
    conn.execute("DROP TABLE temp.fts_columns")
    values = [" ".join([FILLER_TOKEN] * round(totals.get(c, 0) / articles)) for c in FTS_COLUMNS]
    columns = ", ".join(FTS_COLUMNS)
    marks = ", ".join("?" for _ in FTS_COLUMNS)
    conn.executemany(
        f"INSERT INTO articles_fts(rowid, {columns}) VALUES (?, {marks})",
        ([-(i + 1), *values] for i in range(count)),
    )


# --- Synonyms ------------------------------------------------------------------------------


def load_synonyms(path: Path = SYNONYMS_FILE) -> dict[str, list[str]]:
    """Users' words → search terms. Values may be a list or a space-separated string."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    synonyms: dict[str, list[str]] = {}
    for word, terms in data.items():
        if isinstance(terms, str):
            terms = terms.split()
        synonyms[str(word).lower().strip()] = [str(t).lower().strip() for t in terms or []]
    return synonyms


# --- Build -------------------------------------------------------------------------------


def source_files(source_dir: Path) -> list[Path]:
    files = article_paths(source_dir)
    contacts = Path(source_dir) / CONTACTS_FILE
    if contacts.exists():
        files.append(contacts)
    return files + [SYNONYMS_FILE]


def source_hash(source_dir: Path) -> str:
    """Hash of everything a build reads, and of the code that builds, so that a change
    to either makes the database stale."""
    digest = hashlib.sha256(SCHEMA_VERSION.encode())
    for path in [*source_files(source_dir), *BUILD_CODE]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_stale(source_dir: Path, db_path: Path) -> bool:
    """True when db_path is missing, unreadable, or built from other sources."""
    try:
        with closing(connect_read_only(Path(db_path))) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'source_hash'").fetchone()
    except (sqlite3.Error, KnowledgeBaseUnavailable):
        return True
    return row is None or row[0] != source_hash(source_dir)


def _progress(items: list, enabled: bool, description: str) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="article")


def write_database(
    db_path: Path,
    articles: list[Article],
    contacts: dict[str, Contact],
    synonyms: dict[str, list[str]],
    meta: dict[str, str],
    progress: bool = False,
) -> Path:
    """Write a complete knowledge base to db_path atomically (temp file + os.replace)."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".knowledge-", suffix=".db.tmp", dir=db_path.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        db = sqlite_utils.Database(temp_path)
        # Tables are created explicitly so that an empty source still gives every table.
        db["articles"].create(ARTICLE_COLUMNS, pk="id")
        db["contacts"].create(CONTACT_COLUMNS, pk="key")
        db["synonyms"].create({"term": str, "expansion": str}, pk="term")
        db["meta"].create({"key": str, "value": str}, pk="key")
        records = (article_record(a, contacts) for a in _progress(articles, progress, "Articles"))
        db["articles"].insert_all(records, batch_size=500)
        db["articles"].enable_fts(list(FTS_COLUMNS), tokenize="porter", create_triggers=False)
        add_filler_rows(db.conn, len(articles))
        db.execute("INSERT INTO articles_fts(articles_fts) VALUES ('optimize')")
        db["contacts"].insert_all(_contact_row(c) for c in contacts.values())
        db["synonyms"].insert_all(
            {"term": k, "expansion": json.dumps(v)} for k, v in synonyms.items()
        )
        db["meta"].insert_all(
            {"key": k, "value": v} for k, v in {"schema_version": SCHEMA_VERSION, **meta}.items()
        )
        db.conn.commit()
        db.close()
        # mkstemp makes the file private; the knowledge base is public information.
        temp_path.chmod(0o644)
        os.replace(temp_path, db_path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    return db_path


def build_knowledge_base(source_dir: Path, db_path: Path, progress: bool = False) -> Path:
    """Rebuild db_path from source_dir from scratch. Unusable articles or contacts are
    skipped with a logged warning (`kb check` is what fails on them)."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"Knowledge source folder {source_dir} does not exist")
    articles, article_errors = load_articles(source_dir)
    contacts, contact_errors, _ = load_contacts(source_dir / CONTACTS_FILE)
    for error in article_errors + contact_errors:
        log.warning("Knowledge base build skipped: %s", error)
    meta = {
        "source_hash": source_hash(source_dir),
        "skipped": json.dumps(article_errors + contact_errors),
    }
    return write_database(db_path, articles, contacts, load_synonyms(), meta, progress)


# --- Reading -------------------------------------------------------------------------------


def connect_read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection; raises KnowledgeBaseUnavailable if there is no file.

    `mode=ro` (rather than a plain connect) because sqlite would otherwise create an
    empty database at a wrong path and we would serve nothing without noticing.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise KnowledgeBaseUnavailable(
            f"The knowledge base {db_path} does not exist. Build it with `safe-report kb build`."
        )
    uri = db_path.resolve().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


def read_all(conn: sqlite3.Connection) -> tuple[list[dict], list[Contact], dict[str, list[str]]]:
    """(article rows, contacts, synonyms) from an open knowledge base."""
    conn.row_factory = sqlite3.Row
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is None or version[0] != SCHEMA_VERSION:
        raise KnowledgeBaseUnavailable("The knowledge base was built by another version.")
    rows = [dict(r) for r in conn.execute("SELECT rowid, * FROM articles ORDER BY rowid")]
    contacts = [
        _contact_from_row(dict(r)) for r in conn.execute("SELECT * FROM contacts ORDER BY rowid")
    ]
    synonyms = {
        r["term"]: json.loads(r["expansion"]) for r in conn.execute("SELECT * FROM synonyms")
    }
    conn.row_factory = None
    return rows, contacts, synonyms


def read_meta(db_path: Path) -> dict[str, str]:
    """The meta table (schema version, source hash, what the build skipped)."""
    with closing(connect_read_only(Path(db_path))) as conn:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
