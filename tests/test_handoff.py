"""The handoff store (bot.handoff) and its CLI, against real SQLite files under tmp_path and
(marked `services`) a real PostgreSQL database: every test that uses `env` runs on both."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from bot.handoff import HandoffError, HandoffNotFound, HandoffRequest, HandoffStore
from bot.handoff import reference as reference_module
from bot.handoff import store as store_module
from bot.handoff.reference import (
    ALPHABET,
    ENTROPY_BITS,
    PATTERN,
    new_reference,
    normalize_reference,
)
from bot.privacy.crypto import ContactCryptoError
from bot.settings import load_settings
from tests.conftest import database_bytes

KEY = Fernet.generate_key().decode()
PHONE = "07700 900123"
EMAIL = "canary.person@example.org"
SECRET_TEXT = "canary-transcript-7f3a he hit me at the flat"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def env(tmp_path, monkeypatch, store_url):
    """Settings with a private DATA_DIR (and, on PostgreSQL, a fresh database) and a real
    encryption key, also for get_settings()."""
    from bot import settings as settings_module

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HANDOFF_DATABASE_URL", store_url)
    monkeypatch.setenv("SAFE_REPORT_ENCRYPTION_KEY", KEY)
    monkeypatch.setenv("STAFF_SESSION_SECRET", "test-secret")
    monkeypatch.setenv("HANDOFF_RETENTION_DAYS", "30")
    settings_module.get_settings.cache_clear()
    yield load_settings()
    settings_module.get_settings.cache_clear()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(env, clock):
    with HandoffStore(settings=env, clock=clock) as opened:
        yield opened


def request(**overrides) -> HandoffRequest:
    values = dict(
        nation="england-wales",
        situation={"role": "victim", "what_happened": "domestic_abuse", "danger_now": "safe",
                   "immigration_fear": True, "service": ["police"]},
        articles_shown=["domestic-abuse-support", "police-and-immigration"],
        transcript=[
            {"speaker": "person", "text": SECRET_TEXT},
            {"speaker": "bot", "text": "Thank you for telling me."},
        ],
        contact_method="phone",
        contact_detail=PHONE,
        safe_times="weekday mornings",
        may_leave_message="no",
        may_say_who="no",
    )
    values.update(overrides)
    return HandoffRequest(**values)


def file_bytes(store: HandoffStore) -> bytes:
    """Everything the database has on disk (SQLite: file, WAL, shm; PostgreSQL: its data
    directory and the WAL)."""
    return database_bytes(store)


def overwrites_deleted_rows(store: HandoffStore) -> bool:
    """SQLite's secure_delete zeroes deleted rows; PostgreSQL keeps their bytes until it
    reuses the space (docs/DEPLOYING.md), so deleted text is checked on SQLite only."""
    return store.dialect == "sqlite"


def actions(store: HandoffStore, reference: str | None = None) -> list[str]:
    return [row["action"] for row in store.audit(1000, reference=reference)]


# -- create / get / reveal -----------------------------------------------------------------


def test_create_get_reveal_with_the_detail_encrypted_on_disk(store):
    email_ref = store.create(request(contact_method="email", contact_detail=EMAIL))
    phone_ref = store.create(request())

    handoff = store.get(phone_ref, "alice")
    assert handoff["reference"] == phone_ref
    assert handoff["status"] == "new"
    assert handoff["contact_detail_masked"] == "ending 123"
    assert handoff["has_contact_detail"] is True
    assert handoff["situation"]["what_happened"] == "domestic_abuse"
    assert handoff["transcript"][0] == {"speaker": "person", "text": SECRET_TEXT}
    assert handoff["articles_shown"] == ["domestic-abuse-support", "police-and-immigration"]
    assert handoff["may_leave_message"] == "no" and handoff["may_say_who"] == "no"
    assert PHONE not in json.dumps(handoff)
    assert store.get(email_ref, "alice")["contact_detail_masked"] == "c•••@e•••.org"

    assert store.reveal(phone_ref, "alice") == PHONE
    assert store.reveal(email_ref, "alice") == EMAIL

    raw = file_bytes(store)
    for plaintext in (PHONE, PHONE.replace(" ", ""), EMAIL, "canary.person"):
        assert plaintext.encode() not in raw
    tokens = store.query("SELECT contact_detail_encrypted AS t FROM handoffs")
    assert all(row["t"].startswith("gAAAA") for row in tokens)
    assert actions(store, phone_ref) == ["reveal", "view"]


def test_a_person_who_will_call_back_leaves_no_detail(store):
    reference = store.create(request(contact_method="self", contact_detail="07700 900555"))
    handoff = store.get(reference, "alice")
    assert handoff["contact_method"] == "self"
    assert handoff["has_contact_detail"] is False and handoff["contact_detail_masked"] is None
    assert store.reveal(reference, "alice") is None
    assert b"900555" not in file_bytes(store)


def test_request_repr_hides_detail_and_transcript():
    text = repr(request())
    assert PHONE not in text and SECRET_TEXT not in text


@pytest.mark.parametrize(
    "overrides",
    [
        {"contact_method": "pigeon"},
        {"may_leave_message": "perhaps"},
        {"transcript": [{"speaker": "attacker", "text": "x"}]},
        {"transcript": ["just a string"]},
        {"articles_shown": "one-article"},
        {"situation": {"role": {"nested": "object"}}},
    ],
)
def test_invalid_requests_are_refused(store, overrides):
    with pytest.raises(HandoffError):
        store.create(request(**overrides))
    assert store.counts() == {"new": 0, "in_progress": 0, "closed": 0}


def test_only_triage_slots_are_kept_from_the_situation(store):
    reference = store.create(request(situation={"what_happened": "assault", "name": "Jane Doe"}))
    assert "name" not in store.get(reference, "alice")["situation"]
    assert b"Jane Doe" not in file_bytes(store)


def test_missing_key_refuses_to_store_a_detail_but_not_a_handoff(env):
    with HandoffStore(settings=env, encryption_key="") as store:
        with pytest.raises(ContactCryptoError, match="SAFE_REPORT_ENCRYPTION_KEY is not set"):
            store.create(request())
        assert store.counts()["new"] == 0  # nothing half-stored, and never in plaintext
        assert PHONE.encode() not in file_bytes(store)
        reference = store.create(request(contact_method="none", contact_detail=None))
        assert store.get(reference, "alice")["contact_method"] == "none"


def test_wrong_key_fails_clearly_and_the_attempt_is_audited(env, store):
    reference = store.create(request())
    other = Fernet.generate_key().decode()
    with HandoffStore(store.url, settings=env, encryption_key=other) as wrong:
        with pytest.raises(ContactCryptoError, match="not the key it was encrypted with") as caught:
            wrong.reveal(reference, "alice")
        assert PHONE not in str(caught.value)
    row = store.audit(1, reference=reference)[0]
    assert (row["action"], row["detail"]) == ("reveal", "failed: wrong or missing key")


def test_unknown_reference_is_not_found(store):
    for bad in ("AAA-AAA-AAA", "../../etc/passwd", "", "K7Q-XM2-PR0"):
        with pytest.raises(HandoffNotFound):
            store.get(bad, "alice")
        with pytest.raises(HandoffNotFound):
            store.reveal(bad, "alice")


def test_references_are_found_however_they_are_read_out(store):
    reference = store.create(request())
    spoken = reference.replace("-", " ").lower()
    assert store.get(spoken, "alice")["reference"] == reference


# -- references --------------------------------------------------------------------------


def test_reference_format_uniqueness_and_entropy():
    refs = [new_reference() for _ in range(20_000)]
    assert len(set(refs)) == len(refs)
    assert all(PATTERN.match(r) for r in refs)
    assert all(not set(r) & set("01OIL") for r in refs)
    assert ENTROPY_BITS >= 40
    assert ENTROPY_BITS == pytest.approx(9 * math.log2(31))
    # Every symbol is used, roughly uniformly (each expected 20000*9/31 ≈ 5806 times).
    joined = "".join(refs).replace("-", "")
    counts = [joined.count(ch) for ch in ALPHABET]
    assert min(counts) > 5000 and max(counts) < 6600


def test_references_are_not_sequential(store):
    refs = [store.create(request(contact_method="none", contact_detail=None)) for _ in range(30)]
    assert len(set(refs)) == 30
    assert refs != sorted(refs)
    assert len({r[:3] for r in refs}) > 10  # no shared prefix / counter


def test_reference_collision_is_retried(store, monkeypatch):
    first = store.create(request(contact_method="none", contact_detail=None))
    fresh = iter([first, first, "ABC-DEF-GHJ"])
    monkeypatch.setattr(store_module, "new_reference", lambda: next(fresh))
    assert store.create(request(contact_method="none", contact_detail=None)) == "ABC-DEF-GHJ"


@given(st.text(alphabet=ALPHABET, min_size=9, max_size=9), st.sampled_from(["", " ", "-"]))
def test_normalize_reference_round_trip(raw, sep):
    canonical = f"{raw[:3]}-{raw[3:6]}-{raw[6:]}"
    assert normalize_reference(f"{raw[:3]}{sep}{raw[3:6]}{sep}{raw[6:]}".lower()) == canonical
    assert reference_module.is_reference(canonical)


@given(st.text(max_size=30))
def test_normalize_reference_never_accepts_junk(text):
    result = normalize_reference(text)
    assert result is None or PATTERN.match(result)


# -- queue: list, filters, counts ----------------------------------------------------------


def test_list_filters_order_and_counts(store, clock):
    made = {}
    specs = [
        ("a", "england-wales", "assault", "new"),
        ("b", "scotland", "domestic_abuse", "new"),
        ("c", "scotland", "assault", "in_progress"),
        ("d", "northern-ireland", "hate_crime", "closed"),
        ("e", "england-wales", "domestic_abuse", "closed"),
    ]
    for name, nation, what, status in specs:
        clock.advance(days=1)
        ref = store.create(request(nation=nation, situation={"what_happened": what}))
        store.set_status(ref, "alice", status)
        made[name] = ref

    def refs(**filters):
        return [made_name(row["reference"]) for row in store.list(**filters)]

    def made_name(ref):
        return next(k for k, v in made.items() if v == ref)

    assert refs() == ["e", "d", "c", "b", "a"]  # newest first
    assert refs(status="new") == ["b", "a"]
    assert refs(nation="scotland") == ["c", "b"]
    assert refs(what_happened="assault") == ["c", "a"]
    assert refs(nation="england-wales", what_happened="domestic_abuse") == ["e"]
    # Dates are whole days (UTC), inclusive at both ends: a=Mar 2, b=Mar 3, ... e=Mar 6.
    assert refs(since=date(2025, 3, 3), until=date(2025, 3, 4)) == ["c", "b"]
    assert refs(since="2025-03-05") == ["e", "d"]
    assert refs(until="2025-03-02") == ["a"]
    assert refs(until=date.max) == refs(until="9999-12-31") == refs()  # no overflow
    assert refs(limit=2) == ["e", "d"]
    assert refs(limit=2, offset=2) == ["c", "b"]
    assert refs(limit=2, offset=4) == ["a"]
    assert store.counts() == {"new": 2, "in_progress": 1, "closed": 2}

    row = store.list(status="in_progress")[0]
    assert set(row) >= {"reference", "created_at", "status", "nation", "what_happened"}
    assert "transcript" not in row and "contact_detail_encrypted" not in row

    with pytest.raises(HandoffError):
        store.list(status="deleted")
    with pytest.raises(HandoffError):
        store.list(since="last tuesday")


def test_counts_match_the_rows_after_every_kind_of_change(env, store, clock):
    def actual():
        result = {"new": 0, "in_progress": 0, "closed": 0}
        for row in store.query("SELECT status, count(*) AS n FROM handoffs GROUP BY status"):
            result[row["status"]] = row["n"]
        return result

    refs = [store.create(request(contact_method="none", contact_detail=None)) for _ in range(12)]
    for i, ref in enumerate(refs):
        store.set_status(ref, "alice", STATUSES_CYCLE[i % 3])
        assert store.counts() == actual()
    store.set_status(refs[2], "alice", "closed")  # unchanged status
    store.set_status(refs[2], "alice", "new")  # reopened
    store.delete(refs[0], "root")
    clock.advance(days=40)
    store.purge()
    assert store.counts() == actual() and sum(store.counts().values()) > 0
    with HandoffStore(store.url, settings=env) as reopened:  # not recounted or doubled
        assert reopened.counts() == actual()


STATUSES_CYCLE = ("in_progress", "closed", "new")


def test_queue_uses_the_indexes(store):
    plans = {
        "status": "status = 'new'",
        "nation": "nation = 'scotland'",
        "situation": "what_happened = 'assault'",
        "date": "created_at >= '2025-01-01'",
    }
    query = "SELECT reference FROM handoffs WHERE {} ORDER BY created_at DESC LIMIT 50"
    for name, where in plans.items():
        with store.transaction() as conn:
            if store.dialect == "sqlite":
                rows = conn.execute("EXPLAIN QUERY PLAN " + query.format(where)).fetchall()
                plan = " ".join(str(row[-1]) for row in rows)
                assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (name, plan)
            else:
                # An empty table is cheapest to scan: ask whether an index *can* serve it.
                conn.execute("SET LOCAL enable_seqscan = off")
                rows = conn.execute("EXPLAIN " + query.format(where)).fetchall()
                plan = " ".join(str(row[0]) for row in rows)
                assert "Index" in plan and "Seq Scan" not in plan, (name, plan)


def test_list_with_an_actor_is_audited(store):
    store.list(status="new", actor="alice")
    row = store.audit(1)[0]
    assert (row["actor"], row["action"], row["reference"]) == ("alice", "list", None)
    assert "status=new" in row["detail"]


# -- notes, status, assignment -------------------------------------------------------------


def test_notes_status_and_assignment(store, clock):
    reference = store.create(request())
    note_id = store.add_note(reference, "alice", "Called twice, <no answer>.")
    assert isinstance(note_id, int)
    with pytest.raises(HandoffError):
        store.add_note(reference, "alice", "   ")
    with pytest.raises(HandoffError):
        store.add_note(reference, "alice", "x" * 5000)
    with pytest.raises(HandoffNotFound):
        store.add_note("AAA-AAA-AAA", "alice", "hello")

    clock.advance(hours=1)
    store.set_status(reference, "alice", "in_progress")
    clock.advance(hours=1)
    store.set_status(reference, "bob", "closed")
    closed = store.get(reference, "alice")
    assert closed["status"] == "closed" and closed["closed_at"] == "2025-03-01T14:00:00.000000Z"
    store.set_status(reference, "bob", "closed")  # no change, no new row
    store.set_status(reference, "bob", "in_progress")  # reopening stops the retention clock
    reopened = store.get(reference, "alice")
    assert reopened["closed_at"] is None
    assert [(c["author"], c["from_status"], c["to_status"]) for c in reopened["status_changes"]] == [
        ("alice", "new", "in_progress"), ("bob", "in_progress", "closed"),
        ("bob", "closed", "in_progress"),
    ]
    with pytest.raises(HandoffError):
        store.set_status(reference, "bob", "archived")

    store.assign(reference, "alice")
    assert store.get(reference, "bob")["assigned_to"] == "alice"
    store.assign(reference, None, actor="bob")
    assert store.get(reference, "bob")["assigned_to"] is None

    handoff = store.get(reference, "alice")
    assert [n["text"] for n in handoff["notes"]] == ["Called twice, <no answer>."]
    assert handoff["updated_at"] > handoff["created_at"]
    audit = store.audit(100, reference=reference)
    assert {"note", "status", "assign", "view"} <= {row["action"] for row in audit}
    status_rows = [row["detail"] for row in audit if row["action"] == "status"]
    assert status_rows == ["closed -> in_progress", "in_progress -> closed", "new -> in_progress"]
    assert all("no answer" not in (row["detail"] or "") for row in audit)


# -- export, delete, purge -----------------------------------------------------------------


def test_export_markdown_is_masked_escaped_and_audited(store):
    reference = store.create(request(
        transcript=[{"speaker": "person", "text": "<img src=x onerror=alert(1)> [link](http://x)"}],
    ))
    store.add_note(reference, "alice", "*bold* note")
    text = store.export_markdown(reference, "alice")
    assert text.startswith(f"# Handoff {reference}\n")
    assert "ending 123" in text and PHONE not in text
    assert "Domestic abuse" in text and "England or Wales" in text
    assert "No: do not leave a message" in text
    assert not re.search(r"(?<!\\)[<>\[\]]", text)  # every <, >, [ and ] is escaped
    assert "\\<img src\\=x" in text and "\\[link\\]\\(http://x\\)" in text
    assert "\\*bold\\* note" in text
    row = store.audit(1)[0]
    assert (row["actor"], row["action"], row["reference"], row["detail"]) == (
        "alice", "export", reference, "markdown")

    data = store.export(reference, "alice")
    assert data["contact_detail_masked"] == "ending 123" and PHONE not in json.dumps(data)


def test_delete_removes_everything_and_leaves_an_audit_row(store):
    keep = store.create(request(contact_method="none", contact_detail=None,
                                transcript=[{"speaker": "person", "text": "keep me"}]))
    gone = store.create(request())
    store.add_note(gone, "alice", "canary-note-91c2")
    store.set_status(gone, "alice", "in_progress")
    assert SECRET_TEXT.encode() in file_bytes(store)

    store.delete(gone, "root")
    with pytest.raises(HandoffNotFound):
        store.get(gone, "root")
    for table in ("handoffs", "notes", "status_changes"):
        assert not store.query(f"SELECT 1 FROM {table} WHERE reference = ?", (gone,))
    raw = file_bytes(store)
    assert PHONE.encode() not in raw
    if overwrites_deleted_rows(store):
        for canary in (SECRET_TEXT, "canary-note-91c2"):
            assert canary.encode() not in raw
    assert b"keep me" in raw
    assert store.get(keep, "root")["transcript"] == [{"speaker": "person", "text": "keep me"}]
    assert store.audit(2)[1]["action"] == "delete"
    assert store.audit(2)[1]["actor"] == "root"
    with pytest.raises(HandoffNotFound):
        store.delete(gone, "root")


def test_purge_removes_closed_and_old_only_and_the_text_leaves_the_files(store, clock):
    def make(text, status=None):
        ref = store.create(request(transcript=[{"speaker": "person", "text": text}]))
        store.add_note(ref, "alice", f"note-{text}")
        if status:
            store.set_status(ref, "alice", status)
        return ref

    old_closed = make("canary-old-closed-5d1e", "closed")  # closed at T0
    old_open = make("canary-old-open-77aa", "in_progress")  # never closed: kept
    clock.advance(days=20)
    recent_closed = make("canary-recent-closed-0b9f", "closed")  # closed at T0 + 20 days
    assert store.counts() == {"new": 0, "in_progress": 1, "closed": 2}

    clock.advance(days=15)  # T0 + 35 days: only the first is 30+ days past closing
    assert store.purge() == 1
    remaining = {row["reference"] for row in store.list()}
    assert remaining == {old_open, recent_closed}
    raw = file_bytes(store)
    if overwrites_deleted_rows(store):
        assert b"canary-old-closed-5d1e" not in raw
        assert b"note-canary-old-closed-5d1e" not in raw
        assert Path(f"{store.path}-wal").stat().st_size == 0  # checkpoint(TRUNCATE)
    assert b"canary-old-open-77aa" in raw and b"canary-recent-closed-0b9f" in raw
    assert not store.query("SELECT 1 FROM notes WHERE reference = ?", (old_closed,))
    assert not store.query("SELECT 1 FROM status_changes WHERE reference = ?", (old_closed,))
    purge_row = store.audit(1)[0]
    assert (purge_row["actor"], purge_row["action"], purge_row["reference"]) == (
        "system", "purge", old_closed)

    assert store.purge() == 0
    assert store.purge(retention_days=10) == 1  # explicit retention overrides the setting
    assert store.purge(now=clock.now + timedelta(days=400)) == 0  # open ones are never purged
    assert [row["reference"] for row in store.list()] == [old_open]


def test_retention_purges_the_configured_stores(env, store):
    from bot.inbox import InboxStore
    from bot.retention import purge_all

    # The inbox in the same place as the handoffs: both SQLite files, or one PostgreSQL database.
    settings = dataclasses.replace(env, inbox_database_url=env.handoff_database_url)
    old = store.create(request())
    store.set_status(old, "alice", "closed")  # at T0, long before today
    kept = store.create(request())
    InboxStore(settings.inbox_url).add("old words", "greet", 0.1, today=date(2020, 1, 1))
    removed = purge_all(settings)
    assert (removed["handoffs"], removed["inbox"]) == (1, 1)
    assert [row["reference"] for row in store.list()] == [kept]
    assert InboxStore(settings.inbox_url).items() == []
    if settings.handoff_database_url:  # nothing fell back to SQLite files
        assert not list(settings.data_dir.glob("handoffs.db*"))
        assert not list(settings.data_dir.glob("inbox.db*"))


# -- the audit log -------------------------------------------------------------------------


def test_every_action_is_audited_without_sensitive_data(store):
    reference = store.create(request(contact_method="email", contact_detail=EMAIL))
    store.get(reference, "alice")
    store.reveal(reference, "alice")
    store.add_note(reference, "alice", "canary-note-text")
    store.set_status(reference, "alice", "closed")
    store.assign(reference, "alice")
    store.export_markdown(reference, "alice")
    store.list(actor="alice")
    store.delete(reference, "root")
    rows = store.audit()
    assert [row["action"] for row in rows] == [
        "delete", "list", "export", "assign", "status", "note", "reveal", "view"]
    dumped = json.dumps(rows)
    for secret in (EMAIL, "canary.person", SECRET_TEXT, "canary-note-text"):
        assert secret not in dumped
    assert all(re.match(r"\d{4}-\d\d-\d\dT", row["at"]) for row in rows)


def test_audit_log_is_append_only(store):
    reference = store.create(request())
    store.get(reference, "alice")
    # A separate connection, as someone with the database credentials would have.
    raw = sa.create_engine(store.url, isolation_level="AUTOCOMMIT")
    tampering = ["UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"]
    if store.dialect == "postgresql":  # statement triggers: refused even if no row matches
        tampering += ["TRUNCATE audit_log", "DELETE FROM audit_log WHERE id < 0"]
    try:
        for statement in tampering:
            with raw.connect() as connection:
                with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                    connection.exec_driver_sql(statement)
        with raw.connect() as connection:
            with pytest.raises(sa.exc.DatabaseError):
                connection.exec_driver_sql(
                    "INSERT INTO audit_log (at, actor, action) VALUES ('x', 'y', 'tamper')")
    finally:
        raw.dispose()
    assert [row["actor"] for row in store.audit()] == ["alice"]
    assert not hasattr(store, "delete_audit") and not hasattr(store, "update_audit")


def test_database_settings(store):
    if store.dialect == "postgresql":  # writers queue on one advisory lock instead
        with store.transaction() as conn:
            held = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND objid = ?", (store.database.lock_key,),
            ).scalar()
        assert held == 1
        return
    pragma = lambda name: list(store.query(f"PRAGMA {name}")[0].values())[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("secure_delete") == 1
    assert pragma("busy_timeout") >= 5000
    assert pragma("foreign_keys") == 1
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"


def test_two_processes_worth_of_writers_do_not_lose_handoffs(env, store):
    """The action server and the web app each have a connection; both write at once."""
    other = HandoffStore(store.url, settings=env)
    made: list[str] = []
    errors: list[BaseException] = []

    def work(target: HandoffStore) -> None:
        try:
            for _ in range(40):
                ref = target.create(request())
                target.add_note(ref, "alice", "n")
                made.append(ref)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in (store, other, store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert not errors
    assert store.counts()["new"] == len(made) == 160


def test_default_path_is_data_dir(env):
    with HandoffStore() as store:
        if env.handoff_database_url:  # PostgreSQL: nothing falls back to a SQLite file
            assert (store.dialect, store.url, store.path) == (
                "postgresql", env.handoff_database_url, None)
            assert not (env.data_dir / "handoffs.db").exists()
        else:
            assert store.dialect == "sqlite"
            assert store.path == env.data_dir / "handoffs.db"
            assert store.path.exists()


# -- the CLI -------------------------------------------------------------------------------


def test_handoffs_cli_lists_shows_and_exports_with_audit(env, monkeypatch):
    from bot.handoff.cli import handoffs

    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    with HandoffStore() as store:
        reference = store.create(request())
    runner = CliRunner()

    listed = runner.invoke(handoffs, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["reference"] for row in json.loads(listed.output)] == [reference]
    assert reference in runner.invoke(handoffs, ["list", "--status", "new"]).output
    assert "No handoffs" in runner.invoke(handoffs, ["list", "--status", "closed"]).output

    shown = runner.invoke(handoffs, ["show", reference, "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["contact_detail_masked"] == "ending 123"
    plain = runner.invoke(handoffs, ["show", reference.lower()])
    assert "ending 123" in plain.output and PHONE not in plain.output

    markdown = runner.invoke(handoffs, ["export", reference])
    assert markdown.output.startswith(f"# Handoff {reference}") and PHONE not in markdown.output
    as_json = runner.invoke(handoffs, ["export", reference, "--format", "json"])
    assert json.loads(as_json.output)["reference"] == reference

    missing = runner.invoke(handoffs, ["show", "AAA-AAA-AAA"])
    assert missing.exit_code != 0 and "No handoff" in missing.output

    with HandoffStore() as store:
        rows = store.audit()
    assert {row["actor"] for row in rows} == {"cli:ops"}
    assert [row["action"] for row in rows] == ["export", "export", "view", "view", "list",
                                               "list", "list"]


def test_staff_cli_add_disable_and_list_users(env):
    from bot.handoff.cli import staff
    from bot.web.staff.accounts import StaffAccounts

    runner = CliRunner()
    short = runner.invoke(staff, ["add-user", "alice"], input="short\nshort\n")
    assert short.exit_code != 0 and "at least 12" in short.output
    mismatch = runner.invoke(staff, ["add-user", "alice"],
                             input="a long password 1\nanother password 2\n"
                                   "a long password 1\na long password 1\n")
    assert mismatch.exit_code == 0, mismatch.output
    assert "do not match" in mismatch.output.lower()
    added = runner.invoke(staff, ["add-user", "Root", "--role", "admin"],
                          input="very secret passphrase\nvery secret passphrase\n")
    assert added.exit_code == 0 and "Added root (admin)" in added.output
    again = runner.invoke(staff, ["add-user", "root"],
                          input="very secret passphrase\nvery secret passphrase\n")
    assert again.exit_code != 0 and "already" in again.output
    assert "very secret" not in added.output

    with HandoffStore() as store:
        accounts = StaffAccounts(store)
        assert accounts.authenticate("alice", "a long password 1") == "alice"
        token, _ = accounts.create_session("alice")
        hashes = store.query("SELECT password_hash FROM staff_users")
        assert all(h["password_hash"].startswith("$argon2id$") for h in hashes)

    listing = runner.invoke(staff, ["list-users"])
    assert re.search(r"alice\s+staff\s+active", listing.output)
    assert re.search(r"root\s+admin\s+active", listing.output)

    assert runner.invoke(staff, ["disable-user", "alice"]).exit_code == 0
    assert re.search(r"alice\s+staff\s+disabled", runner.invoke(staff, ["list-users"]).output)
    assert runner.invoke(staff, ["disable-user", "nobody"]).exit_code != 0
    with HandoffStore() as store:
        accounts = StaffAccounts(store)
        assert accounts.session(token) is None  # disabling ends sessions
        assert accounts.authenticate("alice", "a long password 1") is None
