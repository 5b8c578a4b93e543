"""The review inbox: INBOX_DATABASE_URL (PostgreSQL), or by default DATA_DIR/inbox.db (SQLite).

What goes in: the text of a message the bot understood with low confidence or answered with
its fallback, already redacted, with the intent it guessed and how sure it was. What never
goes in: the sender, the conversation, the time of day. Items are de-duplicated by their
text, so the same phrasing from many people is one row with a count; `first_seen` is a date.

The SQL is the same on both databases (bot.storage: one writer at a time; after `clear` and
`purge`, a WAL checkpoint with `secure_delete` on SQLite, a VACUUM on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bot.settings import get_settings
from bot.storage import Database, as_url

TABLE = "items"
SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    predicted_intent TEXT NOT NULL,
    confidence FLOAT,
    count INTEGER DEFAULT 1,
    first_seen TEXT,
    exported_at TEXT
)""",
    f"CREATE INDEX IF NOT EXISTS idx_{TABLE}_first_seen ON {TABLE} (first_seen)",
)


@dataclass(frozen=True)
class InboxItem:
    text: str
    predicted_intent: str
    confidence: float
    count: int
    first_seen: str
    exported: bool


def _key(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()[:32]


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def _database(url: str) -> Database:
    """One engine (and one schema check) per database and process: the tracker store makes
    an InboxStore for every unsure message."""
    with _databases_lock:
        if url not in _databases:
            database = Database(url, lock_name="inbox")
            database.run_script(SCHEMA)
            _databases[url] = database
        return _databases[url]


class InboxStore:
    """`db_path`: a file path or a database URL; by default the settings' inbox_url."""

    def __init__(self, db_path: str | Path | None = None) -> None:
        self.database = _database(as_url(db_path or get_settings().inbox_url))
        self.url = self.database.url
        self.dialect = self.database.dialect
        self.path = self.database.path  # the SQLite file, or None on PostgreSQL

    def add(self, redacted_text: str, predicted_intent: str, confidence: float,
            today: date | None = None) -> None:
        """Record one message. The caller redacts; nothing that links to a person is taken."""
        text = redacted_text.strip()[:500]
        if not text or text.startswith("/"):
            return
        with self.database.transaction() as conn:
            conn.execute(
                f"INSERT INTO {TABLE} (key, text, predicted_intent, confidence, count,"
                " first_seen, exported_at) VALUES (:key, :text, :intent, :confidence, 1,"
                " :today, NULL)"
                f" ON CONFLICT (key) DO UPDATE SET count = {TABLE}.count + 1, confidence ="
                f" CASE WHEN {TABLE}.confidence < :confidence THEN {TABLE}.confidence"
                " ELSE :confidence END",
                {"key": _key(text), "text": text, "intent": predicted_intent,
                 "confidence": round(confidence, 3),
                 "today": (today or date.today()).isoformat()},
            )

    def items(self, include_exported: bool = True) -> list[InboxItem]:
        where = "" if include_exported else " WHERE exported_at IS NULL"
        rows = self.database.query(
            f"SELECT * FROM {TABLE}{where} ORDER BY count DESC, confidence ASC"
        )
        return [
            InboxItem(r["text"], r["predicted_intent"], r["confidence"], r["count"],
                      r["first_seen"], r["exported_at"] is not None)
            for r in rows
        ]

    def export_yaml(self) -> str:
        """Rasa NLU YAML, one block per guessed intent, for a maintainer to correct.

        The guessed intent is only a proposal: move each example to the right intent,
        then into bot/data/nlu/. Exported items are marked, so `clear` can remove them.
        """
        pending = [i for i in self.items(include_exported=False)]
        by_intent: dict[str, list[InboxItem]] = {}
        for item in pending:
            by_intent.setdefault(item.predicted_intent, []).append(item)
        lines = [
            "# Exported from the safe-report review inbox. The intents below are the bot's",
            "# guesses: correct them, then move the examples into bot/data/nlu/.",
            'version: "3.1"',
            "nlu:",
        ]
        for intent in sorted(by_intent):
            lines.append(f"  - intent: {intent}")
            lines.append("    examples:")
            for item in by_intent[intent]:
                lines.append(f"      # confidence {item.confidence:.2f}, seen {item.count}x")
                lines.append(f"      - text: {json.dumps(_one_line(item.text), ensure_ascii=False)}")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.database.transaction() as conn:
            conn.execute(f"UPDATE {TABLE} SET exported_at = ? WHERE exported_at IS NULL", (now,))
        return "\n".join(lines) + "\n"

    def clear(self, exported_only: bool = True) -> int:
        where = " WHERE exported_at IS NOT NULL" if exported_only else ""
        with self.database.transaction() as conn:
            removed = conn.execute(f"DELETE FROM {TABLE}{where}").rowcount
        self.database.checkpoint((TABLE,))
        return removed

    def purge(self, retention_days: int | None = None, today: date | None = None) -> int:
        days = get_settings().inbox_retention_days if retention_days is None else retention_days
        cutoff = ((today or date.today()) - timedelta(days=days)).isoformat()
        with self.database.transaction() as conn:
            removed = conn.execute(f"DELETE FROM {TABLE} WHERE first_seen < ?", (cutoff,)).rowcount
        self.database.checkpoint((TABLE,))
        return removed

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self.database.close()


def _one_line(text: str) -> str:
    """One line, without the `[text](entity)` shape: placeholders like "[NAME]" must not
    read as entity markup when Rasa loads the file."""
    return " ".join(text.replace("](", "] (").replace("]{", "] {").split())
