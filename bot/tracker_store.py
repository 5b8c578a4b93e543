"""The conversation store: Rasa's SQL tracker store, made safe for this project.

Rasa 3.6 persists every event as JSON text, including what people type. This subclass
- redacts each event before it is written (bot.privacy.redaction), so no personal data
  reaches the disk;
- hides SQL parameters from error messages (SQLAlchemy would print the message text);
- runs SQLite in WAL mode with a busy timeout and `secure_delete`, and retries a locked
  database instead of dropping the turn;
- reports a failed save or load to the REST channel (bot.channels.rest), which answers the
  person calmly with HTTP 503, instead of Rasa silently keeping the turn in memory;
- forgets a whole conversation when `action_forget_conversation` has run.

`ConversationStore` is the same table seen from outside Rasa: the web app, the CLI and the
retention purge use it to delete conversations.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bot.privacy.pii import warm_up
from bot.privacy.redaction import redact_event
from bot.settings import get_settings

logger = logging.getLogger(__name__)

FORGET_ACTION = "action_forget_conversation"
# Answers typed into these form slots are free text by design, not misunderstood messages.
FREE_TEXT_SLOTS = ("contact_detail", "safe_times")
SAVE_ATTEMPTS = 4
# Conversations whose stored event count is remembered (bounded; ids and counts only).
REMEMBERED_TRACKERS = 10_000

# Failures of the store during the current request. The REST channel sets a fresh list per
# message and reads it afterwards; Rasa's FailSafeTrackerStore would otherwise hide them.
store_failures: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "store_failures", default=None
)


class ConversationStoreError(RuntimeError):
    """The conversation could not be saved or loaded."""


def _report_failure(what: str) -> None:
    failures = store_failures.get()
    if failures is not None:
        failures.append(what)


def make_engine(url: str) -> Engine:
    """An engine that never prints SQL parameters and, on SQLite, is safe to share."""
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"hide_parameters": True, "future": True}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 10, "check_same_thread": False}
        # No connection pool on purpose (SQLAlchemy 1.4's NullPool for SQLite files): a
        # connection per use fails cleanly when DATA_DIR turns read-only or full, while a
        # kept-open one took the whole Rasa server down (tests/test_reliability.py).
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(url, **kwargs)
    if is_sqlite:

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def _user_events_answering(tracker: DialogueStateTracker, *slots: str) -> set[int]:
    """ids of the user events sent while the bot was asking for one of `slots`."""
    from rasa.shared.core.events import SlotSet, UserUttered

    asking = None
    answering: set[int] = set()
    for event in tracker.events:
        if isinstance(event, SlotSet) and event.key == "requested_slot":
            asking = event.value
        elif isinstance(event, UserUttered) and asking in slots:
            answering.add(id(event))
    return answering


def inbox_candidate(data: dict[str, Any], threshold: float) -> tuple[str, float] | None:
    """(guessed intent, confidence) when a redacted user event belongs in the review inbox:
    understood with low confidence, handled by the fallback, or out of scope."""
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    text = (data.get("text") or "").strip()
    if not text or text.startswith("/") or parse.get("safety_net"):
        return None
    if name == "nlu_fallback":
        ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
        guess = ranking[0] if ranking else {"name": "out_of_scope", "confidence": 0.0}
        return guess["name"], float(guess.get("confidence") or 0.0)
    # Out-of-scope messages too: they show what people ask that the bot cannot answer yet.
    if name and (confidence < threshold or name == "out_of_scope"):
        return name, confidence
    return None


class ConversationStore:
    """Delete and purge conversations in the tracker store's `events` table."""

    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        url = url or get_settings().tracker_url
        if engine is None and url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = engine or make_engine(url)
        SQLTrackerStore.Base.metadata.create_all(self.engine)

    @property
    def _is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def scrub(self) -> None:
        """Make deleted text really gone from the SQLite file and its WAL."""
        if self._is_sqlite:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def delete(self, sender_id: str) -> int:
        """Delete one conversation at once. Returns the number of events removed."""
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.text("DELETE FROM events WHERE sender_id = :sender_id"),
                {"sender_id": sender_id},
            )
        self.scrub()
        return result.rowcount or 0

    def purge_idle(self, idle_hours: float, now: float | None = None) -> int:
        """Delete conversations with no event for `idle_hours`. Returns conversations removed."""
        cutoff = (now or time.time()) - idle_hours * 3600
        with self.engine.begin() as connection:
            stale = [
                row[0]
                for row in connection.execute(
                    sa.text(
                        "SELECT sender_id FROM events GROUP BY sender_id "
                        "HAVING MAX(timestamp) < :cutoff"
                    ),
                    {"cutoff": cutoff},
                )
            ]
            for sender_id in stale:
                connection.execute(
                    sa.text("DELETE FROM events WHERE sender_id = :sender_id"),
                    {"sender_id": sender_id},
                )
        if stale:
            self.scrub()
        return len(stale)

    def count_events(self, sender_id: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM events"
        params: dict[str, Any] = {}
        if sender_id is not None:
            query += " WHERE sender_id = :sender_id"
            params["sender_id"] = sender_id
        with self.engine.connect() as connection:
            return int(connection.execute(sa.text(query), params).scalar() or 0)

    def vacuum(self) -> None:
        if self._is_sqlite:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("VACUUM")
            self.scrub()


class RedactingSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQLTrackerStore with redaction, safe SQLite settings and loud failures.

    Configured in endpoints.yml as `type: bot.tracker_store.RedactingSQLTrackerStore`.
    The database URL comes from bot.settings (TRACKER_STORE_URL, or SQLite under DATA_DIR).
    """

    def __init__(self, domain=None, event_broker=None, url: str | None = None, **kwargs) -> None:
        # SQLTrackerStore.__init__ is not called on purpose: it builds an engine that shows
        # SQL parameters in errors and retries a missing database forever.
        settings = get_settings()
        self.conversations = ConversationStore(url or settings.tracker_url)
        self.engine = self.conversations.engine
        self.sessionmaker = sa.orm.sessionmaker(bind=self.engine)
        self.inbox_threshold = settings.inbox_confidence_threshold
        # sender id -> (weak reference to the tracker last loaded or saved, its events stored)
        self._stored_counts: OrderedDict[str, tuple[weakref.ref, int]] = OrderedDict()
        TrackerStore.__init__(self, domain, event_broker, **kwargs)
        # The personal-data detector loads a spaCy pipeline (seconds on a busy machine): do
        # it while Rasa starts, not while the first person of the day waits for a reply.
        warm_up()

    @contextmanager
    def session_scope(self) -> Iterator[sa.orm.Session]:
        session = self.sessionmaker()
        try:
            yield session
        finally:
            session.close()

    # The events of the latest session, as Rasa's SQLTrackerStore._event_query selects them
    # (from the newest `session_started`, or all when there is none), written once as plain
    # SQL: building Rasa's ORM query afresh twice per message was a tenth of a turn.
    _SESSION_EVENTS = (
        "FROM events WHERE sender_id = :sender_id AND (:all_sessions OR timestamp >= COALESCE(("
        "  SELECT MAX(s.timestamp) FROM events s WHERE s.sender_id = :sender_id"
        "  AND s.type_name = 'session_started'), timestamp))"
    )
    _SELECT_EVENTS = sa.text(f"SELECT data {_SESSION_EVENTS} ORDER BY id")
    _COUNT_EVENTS = sa.text(f"SELECT COUNT(*) {_SESSION_EVENTS}")

    def _session_query(self, statement: sa.TextClause, sender_id: str, all_sessions: bool):
        with self.engine.connect() as connection:
            return connection.execute(
                statement, {"sender_id": sender_id, "all_sessions": bool(all_sessions)}
            ).all()

    def _remember_stored(self, tracker: DialogueStateTracker, count: int) -> None:
        """`count` of this tracker's events are in the store (it was just loaded or saved)."""
        self._stored_counts[tracker.sender_id] = (weakref.ref(tracker), count)
        self._stored_counts.move_to_end(tracker.sender_id)
        while len(self._stored_counts) > REMEMBERED_TRACKERS:
            self._stored_counts.popitem(last=False)

    def _new_events(self, tracker: DialogueStateTracker) -> list:
        """The events of `tracker` not stored yet (Rasa's `_additional_events`)."""
        # The tracker Rasa saves is nearly always the one this store loaded a moment ago
        # (Rasa's ticket lock keeps every other worker off the conversation meanwhile):
        # then the number of its events already stored is known, and the COUNT is skipped.
        remembered = self._stored_counts.get(tracker.sender_id)
        if remembered is not None and remembered[0]() is tracker:
            stored = remembered[1]
        else:
            stored = self._session_query(self._COUNT_EVENTS, tracker.sender_id, False)[0][0]
        return list(itertools.islice(tracker.events, int(stored or 0), len(tracker.events)))

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool):
        try:
            rows = self._session_query(
                self._SELECT_EVENTS, sender_id, fetch_events_from_all_sessions
            )
            if not rows or not self.domain:
                return None
            events = [json.loads(row[0]) for row in rows]
            tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
            if not fetch_events_from_all_sessions:
                self._remember_stored(tracker, len(tracker.events))
            return tracker
        except Exception as error:
            logger.error("Could not load a conversation: %s", type(error).__name__)
            _report_failure("retrieve")
            raise ConversationStoreError("load failed") from None

    async def save(self, tracker: DialogueStateTracker) -> None:
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                await self._save_redacted(tracker)
                return
            except OperationalError as error:
                # "database is locked" and friends: wait a little, then try again.
                logger.warning(
                    "Conversation store busy (attempt %d of %d): %s",
                    attempt, SAVE_ATTEMPTS, type(error.orig).__name__,
                )
                await asyncio.sleep(0.2 * attempt)
            except Exception as error:
                logger.error("Could not save a conversation: %s", type(error).__name__)
                break
        _report_failure("save")
        logger.error("A conversation turn could not be saved; the person was told.")
        raise ConversationStoreError("save failed")

    async def _save_redacted(self, tracker: DialogueStateTracker) -> None:
        # Counting what is stored and redacting run here (reads never wait in WAL mode, and
        # redaction is CPU work). Only writes go to a thread: while SQLite waits for another
        # worker's write lock, this worker's event loop goes on answering other people.
        # Rasa's ticket lock keeps this conversation's next message waiting meanwhile.
        new_events = self._new_events(tracker)
        if any(getattr(event, "action_name", None) == FORGET_ACTION for event in new_events):
            self._stored_counts.pop(tracker.sender_id, None)
            await asyncio.to_thread(self.conversations.delete, tracker.sender_id)
            return
        rows, unsure = self._redacted_rows(tracker, new_events)
        if rows or unsure:
            await asyncio.to_thread(self._write, rows, unsure)
        self._remember_stored(tracker, len(tracker.events))

    def _redacted_rows(
        self, tracker: DialogueStateTracker, new_events: list
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]]]:
        """The `events` rows for `new_events`, redacted; and the unsure messages among them."""
        contact_detail = _user_events_answering(tracker, "contact_detail")
        free_text = _user_events_answering(tracker, *FREE_TEXT_SLOTS)
        unsure: list[tuple[str, str, float]] = []
        rows: list[dict[str, Any]] = []
        for event in new_events:
            data = redact_event(event.as_dict(), is_contact_detail=id(event) in contact_detail)
            if data.get("event") == "user" and id(event) not in free_text:
                candidate = inbox_candidate(data, self.inbox_threshold)
                if candidate:
                    unsure.append((data["text"], *candidate))
            intent = (data.get("parse_data") or {}).get("intent", {}).get("name")
            rows.append(
                {
                    "sender_id": tracker.sender_id,
                    "type_name": event.type_name,
                    "timestamp": data.get("timestamp"),
                    "intent_name": intent,
                    "action_name": data.get("name"),
                    "data": json.dumps(data),
                }
            )
        return rows, unsure

    def _write(self, rows: list[dict[str, Any]], unsure: list[tuple[str, str, float]]) -> None:
        if rows:
            # One multi-row INSERT (SQLAlchemy Core): the ORM's unit of work per event cost
            # more than the write itself. Rows keep tracker order (autoincrement id).
            with self.engine.begin() as connection:
                connection.execute(sa.insert(self.SQLEvent.__table__), rows)
        self._to_inbox(unsure)

    def _to_inbox(self, unsure: list[tuple[str, str, float]]) -> None:
        """Unsure messages (already redacted) go to the review inbox, unlinked."""
        if not unsure:
            return
        try:
            from bot.inbox import InboxStore

            inbox = InboxStore()
            for text, intent, confidence in unsure:
                inbox.add(text, intent, confidence)
        except Exception as error:  # the inbox must never cost a conversation turn
            logger.error("Could not add to the review inbox: %s", type(error).__name__)
