"""Search the knowledge base: safe FTS5 queries from any text, ranked by bm25 with boosts.

How a question becomes a query:
1. Lowercase, keep only word tokens (letters and digits, any script). Nothing the user
   types can reach FTS5 syntax: every term is re-quoted by us, so quotes, AND/OR/NOT/NEAR,
   `*`, `^`, `:` and brackets are just text.
2. Drop stopwords ("can", "i", "what", ...) and cap the number of terms.
3. Expand with `synonyms.yml`: the words people use ("papers", "deport", "boss") add the
   words articles use ("immigration status", "home office", "employer"). Multi-word
   expansions are matched as phrases.
4. Join the quoted terms with OR (the person's own words twice, so they outweigh the
   synonyms) and rank by bm25 with column weights (title, keywords and summary count
   more than the body), times a boost for articles that fit the person's situations
   and nation.
5. On a very large collection, drop the commonest terms first so that bm25 never has
   to score more than MATCH_BUDGET rows (see `_affordable_terms`); with the real,
   small knowledge base nothing is dropped.

The index smooths word statistics with filler rows (see `store.add_filler_rows`), so
a word found in most articles still counts a little instead of not at all.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.knowledge.articles import ALLOWED_SITUATIONS, PERSON_NATIONS, Article, Source
from bot.knowledge.contacts import Contact
from bot.knowledge.store import (
    FILLER_TOKEN,
    FTS_COLUMNS,
    KnowledgeBaseUnavailable,
    connect_read_only,
    read_all,
)

log = logging.getLogger(__name__)

# bm25 column weights, in FTS_COLUMNS order: title, summary, keywords, next_step, body.
COLUMN_WEIGHTS = {
    "title": 2.0,
    "summary": 1.0,
    "keywords_text": 1.6,
    "next_step": 0.6,
    "body_text": 0.2,
}
SITUATION_BOOST = 0.25  # per matching situation, at most MAX_SITUATION_MATCHES of them
MAX_SITUATION_MATCHES = 2
NATION_BOOST = 0.25  # the article covers the person's nation (or all nations)

USER_TERM_WEIGHT = 2  # the person's own words count double the synonym expansions

MIN_CANDIDATES = 50  # rows ranked by bm25 before the boost re-orders them
MATCH_BUDGET = 2000  # rows bm25 may score per search: bounds latency on big collections
MAX_CACHED_FREQUENCIES = 100_000

MAX_QUERY_CHARS = 2000  # nobody asks a question longer than this; the rest is noise
MAX_USER_TERMS = 24
MAX_TERMS = 48
SNIPPET_TOKENS = 16

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been
    before being below between both but by can cant could couldn did didn do does doesn
    doing don dont down during each few for from further had has have having he her here
    hers herself him himself his how i if im in into is isn it its itself ive just let
    me might more most must my myself no nor not now of off on once only or other our
    ours out over own same shall she should so some such than that the their theirs them
    then there these they this those through to too u under until up very was wasn we
    were what when where which while who whom why will with won would you your yours
    yourself ur pls please hi hello hey thanks thank ok okay also still really get got
    s t d ll m o re ve y
    """.split()
)

# Word tokens: letters and digits of any script (underscore is not a word character for
# the FTS5 tokenizer, so it must not be one here either).
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class SearchResult:
    id: str
    title: str
    score: float
    snippet: str


# --- Query building ------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _quote(term_words: Sequence[str]) -> str:
    """One FTS5 string (a phrase when several words). Words never contain '"'."""
    return '"' + " ".join(term_words) + '"'


def _variants(word: str) -> list[str]:
    """The word and naive singular/stem forms, to look users' inflections up in synonyms."""
    forms = [word]
    for suffix, replacement in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"),
                                ("ing", ""), ("ing", "e"), ("d", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.append(word[: len(word) - len(suffix)] + replacement)
    return forms


class QueryBuilder:
    """Turns free text into a safe FTS5 MATCH expression, using the synonyms."""

    def __init__(self, synonyms: dict[str, list[str]]):
        self.single = {k: v for k, v in synonyms.items() if re.fullmatch(r"[^\W_]+", k)}
        phrases = sorted((k for k in synonyms if k not in self.single), key=len, reverse=True)
        self.phrases = {k: synonyms[k] for k in phrases}
        # Phrase keys ("home office", "a&e") are matched in the text between word edges.
        self._phrase_pattern = (
            re.compile(
                r"(?<![^\W_])(" + "|".join(re.escape(" ".join(p.split())) for p in phrases) + r")(?![^\W_])"
            )
            if phrases
            else None
        )

    def expansions(self, text: str, tokens: list[str]) -> list[list[str]]:
        """The synonym expansions (each a list of words) that the text calls for."""
        found: list[list[str]] = []
        if self._phrase_pattern is not None:
            normalised = " ".join(text.lower().split())
            for match in self._phrase_pattern.finditer(normalised):
                found.extend(words(term) for term in self.phrases[match.group(1)])
        for token in tokens:
            for form in _variants(token):
                if form in self.single:
                    found.extend(words(term) for term in self.single[form])
                    break
        return [w for w in found if w]

    def weighted_terms(self, text: str) -> list[tuple[str, int]]:
        """(quoted FTS5 term, weight) for text: the person's own words weigh
        USER_TERM_WEIGHT, synonym expansions 1. Deduplicated and capped."""
        text = (text or "")[:MAX_QUERY_CHARS]
        tokens = [t for t in words(text)
                  if t not in STOPWORDS and t != FILLER_TOKEN and (len(t) > 1 or t.isdigit())]
        tokens = list(dict.fromkeys(tokens))[:MAX_USER_TERMS]
        weights = {_quote([t]): USER_TERM_WEIGHT for t in tokens}
        for expansion in self.expansions(text, tokens):
            weights.setdefault(_quote(expansion), 1)
        return list(weights.items())[:MAX_TERMS]

    def terms(self, text: str) -> list[str]:
        """The quoted FTS5 terms for text, user's own words first."""
        return [term for term, _ in self.weighted_terms(text)]

    def match_expression(self, text: str) -> str | None:
        """The MATCH expression for text (before dropping unaffordable terms), or None."""
        return match_expression(self.weighted_terms(text))


# --- The knowledge base ----------------------------------------------------------------


def _article_from_row(row: dict) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        next_step=row["next_step"],
        situations=tuple(json.loads(row["situations"])),
        nations=tuple(json.loads(row["nations"])),
        contacts=tuple(json.loads(row["contacts"])),
        keywords=tuple(json.loads(row["keywords"])),
        sources=tuple(
            Source(title=s["title"], url=s["url"], date=date.fromisoformat(s["date"]))
            for s in json.loads(row["sources"])
        ),
        last_reviewed=date.fromisoformat(row["last_reviewed"]),
        body=row["body"],
    )


class KnowledgeBase:
    """Read-only knowledge base. Articles and contacts live in memory (dict look-ups);
    search runs on a per-thread read-only SQLite connection."""

    _cache: dict[tuple, KnowledgeBase] = {}
    _cache_lock = threading.Lock()

    def __init__(self, db_path: Path, rows: list[dict], contacts: list[Contact],
                 synonyms: dict[str, list[str]], identity: tuple | None = None):
        self.db_path = Path(db_path)
        # Which file (inode, mtime) the articles were read from: a connection opened
        # later must read the same file, or rowids would point at the wrong articles.
        self._identity = identity
        self._articles: dict[str, Article] = {}
        self._by_rowid: dict[int, Article] = {}
        for row in rows:
            article = _article_from_row(row)
            self._articles[article.id] = article
            self._by_rowid[row["rowid"]] = article
        self._contacts = {c.key: c for c in contacts}
        self.synonyms = synonyms
        self.query_builder = QueryBuilder(synonyms)
        self._local = threading.local()
        # Rows matching each term. The file never changes under an open knowledge base,
        # so the counts never go stale.
        self._frequencies: dict[str, int] = {}

    @classmethod
    def open(cls, db_path: Path) -> KnowledgeBase:
        """The knowledge base at db_path, loaded once and cached. A rebuilt file (new
        mtime, size or inode) is loaded afresh on the next open, so a rebuild needs no
        restart."""
        db_path = Path(db_path).resolve()
        try:
            stat = db_path.stat()
        except OSError:
            raise KnowledgeBaseUnavailable(
                f"The knowledge base {db_path} does not exist. "
                "Build it with `safe-report kb build`."
            ) from None
        key = (str(db_path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with cls._cache_lock:
            cached = cls._cache.get(key)
            if cached is None:
                cached = cls._load(db_path, identity=_identity(stat))
                # Forget older versions of the same file.
                for old in [k for k in cls._cache if k[0] == key[0]]:
                    del cls._cache[old]
                cls._cache[key] = cached
            return cached

    @classmethod
    def _load(cls, db_path: Path, identity: tuple | None = None) -> KnowledgeBase:
        try:
            conn = connect_read_only(db_path)
            try:
                rows, contacts, synonyms = read_all(conn)
            finally:
                conn.close()
        except (sqlite3.Error, KeyError, ValueError) as error:
            raise KnowledgeBaseUnavailable(
                f"The knowledge base {db_path} cannot be read ({error}). "
                "Rebuild it with `safe-report kb build`."
            ) from error
        return cls(db_path, rows, contacts, synonyms, identity)

    @classmethod
    def clear_cache(cls) -> None:
        with cls._cache_lock:
            cls._cache.clear()

    # --- Look-ups ---

    def article(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    def articles(self) -> list[Article]:
        return list(self._articles.values())

    def contact(self, key: str) -> Contact | None:
        return self._contacts.get(key)

    def contacts(self) -> list[Contact]:
        return list(self._contacts.values())

    def always_open_contacts(self, nation: str | None = None) -> list[Contact]:
        """24/7 contacts that serve the nation, in registry order, except: lines for that
        very nation come first, and 999/101/111-type numbers last (everyone knows them;
        a helpline is the useful thing to add)."""
        nation = nation if nation in PERSON_NATIONS else None
        found = [c for c in self._contacts.values() if c.is_24_7 and c.serves(nation)]
        return sorted(
            found,
            key=lambda c: (c.is_universal_number, nation is not None and nation not in c.nations),
        )

    # --- Search ---

    def search(self, query: str, *, situations: Sequence[str] = (), nation: str | None = None,
               limit: int = 5) -> list[SearchResult]:
        """Best articles first. Never raises for any query text; empty query → []."""
        terms = self.query_builder.weighted_terms(query if isinstance(query, str) else "")
        limit = max(0, min(int(limit), 100))
        if not terms or limit == 0:
            return []
        try:
            conn = self._connection()
            terms = self._affordable_terms(conn, terms)
            if not terms:
                return []
            match = match_expression(terms)
            candidates = conn.execute(RANK_SQL, [match, max(limit * 10, MIN_CANDIDATES)])
            ranked = self._boosted(candidates.fetchall(), situations, nation)[:limit]
            snippets = _snippets(conn, match, [rowid for rowid, _, _ in ranked])
        except (sqlite3.Error, KnowledgeBaseUnavailable):
            # Not the user's text (every term is quoted by us) but the file: log it
            # loudly and answer "nothing found" rather than break the conversation.
            log.exception("Knowledge base search failed on %s", self.db_path)
            return []
        return [
            SearchResult(id=article.id, title=article.title, score=round(score, 4),
                         snippet=snippets.get(rowid, ""))
            for rowid, article, score in ranked
        ]

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_read_only(self.db_path)
            if self._identity is not None and _identity(self.db_path.stat()) != self._identity:
                conn.close()
                raise KnowledgeBaseUnavailable(
                    f"{self.db_path} was rebuilt; call KnowledgeBase.open() again"
                )
            self._local.conn = conn
        return conn

    def _frequency(self, conn: sqlite3.Connection, term: str) -> int:
        count = self._frequencies.get(term)
        if count is None:
            count = conn.execute(COUNT_SQL, [term]).fetchone()[0]
            if len(self._frequencies) < MAX_CACHED_FREQUENCIES:
                self._frequencies[term] = count
        return count

    def _affordable_terms(self, conn: sqlite3.Connection,
                          terms: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Drop terms no article has, then, rarest first, keep terms while the rows they
        match stay within MATCH_BUDGET (always at least the rarest).

        bm25 is computed for every row that matches any term, which is what costs time.
        A term found in thousands of articles has almost no weight (low idf) yet makes
        bm25 score all of them. With a few hundred articles nothing is ever dropped (no
        term can match more rows than there are); on a very large collection only the
        commonest words go.
        """
        counted = [(term, weight, self._frequency(conn, term)) for term, weight in terms]
        present = sorted((c for c in counted if c[2] > 0), key=lambda c: c[2])
        kept: set[str] = set()
        total = 0
        for term, _, count in present:
            if kept and total + count > MATCH_BUDGET:
                break
            kept.add(term)
            total += count
        return [(term, weight) for term, weight, _ in counted if term in kept]

    def _boosted(self, candidates: list[tuple[int, float]], situations: Sequence[str],
                 nation: str | None) -> list[tuple[int, Article, float]]:
        """(rowid, article, score) best first: -bm25 times the situation/nation boost."""
        wanted = {s for s in situations or () if s in ALLOWED_SITUATIONS}
        nation = nation if nation in PERSON_NATIONS else None
        scored = []
        for rowid, rank in candidates:
            article = self._by_rowid.get(rowid)
            if article is not None:  # filler rows have no article
                scored.append((rowid, article, -rank * _boost(article, wanted, nation)))
        return sorted(scored, key=lambda item: (-item[2], item[1].id))


def _identity(stat) -> tuple:
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _boost(article: Article, situations: set[str], nation: str | None) -> float:
    """≥ 1: more for articles that fit the person's situations and nation."""
    factor = 1.0
    matches = len(situations.intersection(article.situations))
    factor += SITUATION_BOOST * min(matches, MAX_SITUATION_MATCHES)
    if nation and ("all" in article.nations or nation in article.nations):
        factor += NATION_BOOST
    return factor


def match_expression(terms: list[tuple[str, int]]) -> str | None:
    """`"a" OR "a" OR "b" ...` from (quoted term, weight) pairs.

    bm25() sums over the phrases of the query, so a phrase given twice counts twice:
    that is how the person's own words outweigh the synonyms we added.
    """
    return " OR ".join(term for term, weight in terms for _ in range(weight)) or None


_WEIGHTS = ", ".join(str(COLUMN_WEIGHTS[c]) for c in FTS_COLUMNS)
# Ranking reads the index only (no join): the boost is applied in Python to the best
# candidates, using the articles already in memory.
RANK_SQL = f"""
    SELECT rowid, bm25(articles_fts, {_WEIGHTS}) AS rank
    FROM articles_fts WHERE articles_fts MATCH ?
    ORDER BY rank LIMIT ?
"""
COUNT_SQL = "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?"


def _snippets(conn: sqlite3.Connection, match: str, rowids: list[int]) -> dict[int, str]:
    """Body snippets for the chosen rows only: snippet() is costly, so it is not computed
    for every row that matched."""
    if not rowids:
        return {}
    body = FTS_COLUMNS.index("body_text")
    marks = ", ".join("?" for _ in rowids)
    sql = f"""
        SELECT rowid, snippet(articles_fts, {body}, '', '', '…', {SNIPPET_TOKENS})
        FROM articles_fts WHERE articles_fts MATCH ? AND rowid IN ({marks})
    """
    return {rowid: text for rowid, text in conn.execute(sql, [match, *rowids])}
