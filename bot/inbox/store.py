"""The review inbox (DATA_DIR/inbox.db, sqlite-utils).

What goes in: the text of a message the bot understood with low confidence or answered with
its fallback, already redacted, with the intent it guessed and how sure it was. What never
goes in: the sender, the conversation, the time of day. Items are de-duplicated by their
text, so the same phrasing from many people is one row with a count; `first_seen` is a date.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import sqlite_utils

from bot.settings import get_settings

TABLE = "items"


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


class InboxStore:
    def __init__(self, db_path: Path | None = None) -> None:
        self.path = Path(db_path or get_settings().inbox_db)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute("PRAGMA secure_delete=ON")
        self.db = sqlite_utils.Database(connection)
        if TABLE not in self.db.table_names():
            self.db[TABLE].create(
                {
                    "key": str, "text": str, "predicted_intent": str, "confidence": float,
                    "count": int, "first_seen": str, "exported_at": str,
                },
                pk="key",
                not_null={"text", "predicted_intent"},
                defaults={"count": 1},
            )
            self.db[TABLE].create_index(["first_seen"])

    def add(self, redacted_text: str, predicted_intent: str, confidence: float,
            today: date | None = None) -> None:
        """Record one message. The caller redacts; nothing that links to a person is taken."""
        text = redacted_text.strip()[:500]
        if not text or text.startswith("/"):
            return
        key = _key(text)
        with self.db.conn:
            updated = self.db.execute(
                f"UPDATE {TABLE} SET count = count + 1, confidence = MIN(confidence, ?) WHERE key = ?",
                [round(confidence, 3), key],
            ).rowcount
            if not updated:
                self.db[TABLE].insert(
                    {
                        "key": key, "text": text, "predicted_intent": predicted_intent,
                        "confidence": round(confidence, 3), "count": 1,
                        "first_seen": (today or date.today()).isoformat(), "exported_at": None,
                    },
                    ignore=True,
                )

    def items(self, include_exported: bool = True) -> list[InboxItem]:
        where = None if include_exported else "exported_at IS NULL"
        rows = self.db[TABLE].rows_where(where, order_by="count DESC, confidence ASC")
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
        with self.db.conn:
            self.db.execute(f"UPDATE {TABLE} SET exported_at = ? WHERE exported_at IS NULL", [now])
        return "\n".join(lines) + "\n"

    def clear(self, exported_only: bool = True) -> int:
        where = "WHERE exported_at IS NOT NULL" if exported_only else ""
        with self.db.conn:
            removed = self.db.execute(f"DELETE FROM {TABLE} {where}").rowcount
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def purge(self, retention_days: int | None = None, today: date | None = None) -> int:
        days = get_settings().inbox_retention_days if retention_days is None else retention_days
        cutoff = ((today or date.today()) - timedelta(days=days)).isoformat()
        with self.db.conn:
            removed = self.db.execute(f"DELETE FROM {TABLE} WHERE first_seen < ?", [cutoff]).rowcount
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed


def _one_line(text: str) -> str:
    """One line, without the `[text](entity)` shape: placeholders like "[NAME]" must not
    read as entity markup when Rasa loads the file."""
    return " ".join(text.replace("](", "] (").replace("]{", "] {").split())
