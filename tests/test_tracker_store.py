"""bot.tracker_store on real SQLite files: redaction at rest, forgetting, purge, safety."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.tracker_store import (
    ConversationStore,
    ConversationStoreError,
    RedactingSQLTrackerStore,
    store_failures,
)

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, forget_conversation]
slots:
  nation:
    type: categorical
    values: [scotland]
    mappings: [{type: custom}]
  note:
    type: text
    mappings: [{type: custom}]
actions: [action_forget_conversation]
"""
)

CANARY_EMAIL = "canary.person@example.org"
CANARY_PHONE = "07700 900123"


def run(coro):
    return asyncio.run(coro)


def tracker_with(sender: str, *events) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for event in events:
        tracker.update(event)
    return tracker


def user(text: str) -> UserUttered:
    return UserUttered(
        text,
        intent={"name": "greet", "confidence": 0.9},
        parse_data={
            "text": text,
            "intent": {"name": "greet", "confidence": 0.9},
            "entities": [{"entity": "nation", "value": "scotland", "start": 0, "end": 3}],
        },
        metadata={"ip": "203.0.113.7"},
    )


@pytest.fixture
def store(settings) -> RedactingSQLTrackerStore:
    return RedactingSQLTrackerStore(domain=DOMAIN)


def file_bytes(settings) -> bytes:
    """Everything the conversation store has on disk, database and WAL."""
    return b"".join(
        p.read_bytes() for p in settings.data_dir.glob("conversations.db*") if p.is_file()
    )


def test_events_are_saved_under_data_dir_and_read_back(store, settings):
    tracker = tracker_with("abc", ActionExecuted("action_listen"), user("hello there"))
    run(store.save(tracker))
    again = run(store.retrieve("abc"))
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["hello there"]
    assert (settings.data_dir / "conversations.db").exists()


def test_personal_data_never_reaches_the_disk(store, settings):
    text = f"my email is {CANARY_EMAIL} and my number is {CANARY_PHONE}"
    tracker = tracker_with(
        "abc",
        ActionExecuted("action_listen"),
        user(text),
        SlotSet("note", text),
        SlotSet("nation", "scotland"),
        BotUttered(f"I heard {CANARY_PHONE}"),
    )
    run(store.save(tracker))
    raw = file_bytes(settings)
    assert CANARY_EMAIL.encode() not in raw
    assert CANARY_PHONE.encode() not in raw
    assert b"203.0.113.7" not in raw  # client metadata is dropped
    saved = run(store.retrieve("abc"))
    texts = [e.text for e in saved.events if isinstance(e, UserUttered)]
    assert "[EMAIL]" in texts[0] and "[PHONE]" in texts[0]
    assert saved.get_slot("nation") == "scotland"  # categorical values are kept


def test_forget_action_removes_the_whole_conversation(store, settings):
    run(store.save(tracker_with("gone", ActionExecuted("action_listen"), user("hello"))))
    tracker = run(store.retrieve("gone"))
    tracker.update(user("please forget me"))
    tracker.update(ActionExecuted("action_forget_conversation"))
    run(store.save(tracker))
    assert run(store.retrieve("gone")) is None
    assert ConversationStore().count_events("gone") == 0


def test_delete_and_purge_really_remove_the_text(settings):
    store = RedactingSQLTrackerStore(domain=DOMAIN)
    run(store.save(tracker_with("old", ActionExecuted("action_listen"), user("zebra canary words"))))
    run(store.save(tracker_with("new", ActionExecuted("action_listen"), user("fresh words"))))
    conversations = ConversationStore()
    # "old" had its last event long ago, "new" just now.
    with conversations.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE events SET timestamp = ? WHERE sender_id = 'old'", (time.time() - 48 * 3600,)
        )
    assert conversations.purge_idle(idle_hours=24) == 1
    assert conversations.count_events("old") == 0 and conversations.count_events("new") > 0
    assert b"zebra canary words" not in file_bytes(settings)

    assert conversations.delete("new") > 0
    assert b"fresh words" not in file_bytes(settings)


def test_sqlite_runs_in_wal_mode_with_secure_delete(store):
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_a_failed_save_is_reported_not_hidden_and_logs_no_text(store, settings, caplog):
    tracker = tracker_with("abc", ActionExecuted("action_listen"), user(f"call {CANARY_PHONE}"))
    blocker = sqlite3.connect(settings.data_dir / "conversations.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    failures: list[str] = []
    token = store_failures.set(failures)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(ConversationStoreError):
            run(_save_with_short_timeout(store, tracker))
    finally:
        store_failures.reset(token)
        blocker.rollback()
        blocker.close()
    assert failures == ["save"]
    assert CANARY_PHONE not in caplog.text
    assert "[parameters:" not in caplog.text


async def _save_with_short_timeout(store, tracker):
    """Save through an engine with a 50 ms busy timeout (production waits 10 s)."""
    import sqlalchemy as sa

    from bot.tracker_store import make_engine

    engine = make_engine(str(store.engine.url))

    @sa.event.listens_for(engine, "connect")
    def _short(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    store.engine = engine
    store.sessionmaker = sa.orm.sessionmaker(bind=engine)
    await store.save(tracker)


def test_only_the_latest_session_is_loaded_and_saving_appends_after_it(store):
    from rasa.shared.core.events import SessionStarted

    first = tracker_with("s", ActionExecuted("action_listen"), user("first session"))
    run(store.save(first))
    tracker = run(store.retrieve("s"))
    for event in (ActionExecuted("action_session_start"), SessionStarted(),
                  ActionExecuted("action_listen"), user("second session")):
        time.sleep(0.002)  # sessions are told apart by timestamp, as in Rasa
        tracker.update(event)
    run(store.save(tracker))
    latest = run(store.retrieve("s"))
    assert [e.text for e in latest.events if isinstance(e, UserUttered)] == ["second session"]
    full = run(store.retrieve_full_tracker("s"))
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == [
        "first session", "second session"
    ]
    # Saving the latest-session tracker again adds only what is new.
    latest.update(user("third message"))
    run(store.save(latest))
    assert store.conversations.count_events("s") == len(full.events) + 1
    assert run(store.retrieve("unknown")) is None


def test_creating_the_store_loads_the_personal_data_detector(settings):
    """So the first message after Rasa starts does not wait for the spaCy pipeline."""
    import os
    import subprocess
    import sys

    from bot.settings import PROJECT_ROOT

    code = (
        "from bot.privacy import pii\n"
        "assert not pii.is_warm()\n"
        "from bot.tracker_store import RedactingSQLTrackerStore\n"
        "RedactingSQLTrackerStore()\n"
        "assert pii.is_warm()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
        env={**os.environ, "DATA_DIR": str(settings.data_dir)}, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_each_event_is_stored_once_whichever_tracker_object_is_saved(store):
    """The store remembers how much of a tracker it loaded or saved; any other tracker
    object of the same conversation is checked against the table instead."""
    a = tracker_with("once", ActionExecuted("action_listen"), user("one"))
    run(store.save(a))
    run(store.save(a))  # nothing new: nothing written
    a.update(user("two"))
    run(store.save(a))
    assert store.conversations.count_events("once") == 3
    # A tracker object this store never saw, holding the same events and one more.
    b = tracker_with("once", ActionExecuted("action_listen"), user("one"), user("two"),
                     user("three"))
    run(store.save(b))
    loaded = run(store.retrieve("once"))
    assert [e.text for e in loaded.events if isinstance(e, UserUttered)] == ["one", "two", "three"]
