"""The handoff record: what a person agreed to pass to Liberty's advice line.

One SQLite file, DATA_DIR/handoffs.db, opened with sqlite-utils, in WAL mode with a busy
timeout and `secure_delete` (deleted rows are overwritten with zeros, and every deletion is
followed by a TRUNCATE checkpoint so old copies do not linger in the WAL file).

What is kept, and how:
- the triage answers (categorical values only), the articles shown, and the transcript the
  caller already redacted, stored as given;
- the contact detail encrypted with Fernet (bot.privacy.crypto) plus a masked form for
  everyday use; the plaintext never reaches the disk;
- staff notes, status changes, and an append-only audit log of every access (who, what,
  when, which reference; never the contact detail or transcript text; no IP addresses).
  SQLite triggers refuse UPDATE and DELETE on `audit_log`.

Staff accounts and sessions live in the same file (tables `staff_users`, `staff_sessions`);
their logic is in bot.web.staff.accounts.

Writes use `BEGIN IMMEDIATE`, so two processes (the action server creating handoffs and the
web app reviewing them) wait on the busy timeout instead of failing half-way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.handoff.reference import new_reference, normalize_reference
from bot.privacy.crypto import ContactCipher, ContactCryptoError, mask
from bot.settings import Settings, get_settings

STATUSES = ("new", "in_progress", "closed")
CONTACT_METHODS = ("phone", "text", "email", "self", "none")
METHODS_WITH_DETAIL = ("phone", "text", "email")
YES_NO_UNKNOWN = ("yes", "no", "unknown")
AUDIT_ACTIONS = (
    "view", "reveal", "export", "status", "note", "assign", "delete",
    "sign_in", "sign_in_failed", "lockout", "purge", "list",
)
SITUATION_KEYS = ("role", "what_happened", "danger_now", "immigration_fear", "service")
NOTE_MAX_CHARS = 4000
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order
SCHEMA_VERSION = 1

def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS handoffs (
    reference TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ({_quoted(STATUSES)})),
    closed_at TEXT,
    assigned_to TEXT,
    nation TEXT,
    situation_summary TEXT NOT NULL DEFAULT '{{}}',
    articles_shown TEXT NOT NULL DEFAULT '[]',
    transcript TEXT NOT NULL DEFAULT '[]',
    contact_method TEXT NOT NULL DEFAULT 'none'
        CHECK (contact_method IN ({_quoted(CONTACT_METHODS)})),
    contact_detail_encrypted TEXT,
    contact_detail_masked TEXT,
    safe_times TEXT,
    may_leave_message TEXT NOT NULL DEFAULT 'unknown'
        CHECK (may_leave_message IN ({_quoted(YES_NO_UNKNOWN)})),
    may_say_who TEXT NOT NULL DEFAULT 'unknown'
        CHECK (may_say_who IN ({_quoted(YES_NO_UNKNOWN)})),
    what_happened TEXT GENERATED ALWAYS AS
        (json_extract(situation_summary, '$.what_happened')) VIRTUAL
);
CREATE INDEX IF NOT EXISTS handoffs_created ON handoffs (created_at);
CREATE INDEX IF NOT EXISTS handoffs_status_created ON handoffs (status, created_at);
CREATE INDEX IF NOT EXISTS handoffs_nation_created ON handoffs (nation, created_at);
CREATE INDEX IF NOT EXISTS handoffs_situation_created ON handoffs (what_happened, created_at);
CREATE INDEX IF NOT EXISTS handoffs_closed_at ON handoffs (closed_at) WHERE status = 'closed';

-- Per-status counts kept by triggers, so the queue header costs O(1), not a scan.
CREATE TABLE IF NOT EXISTS handoff_status_counts (
    status TEXT PRIMARY KEY,
    n INTEGER NOT NULL DEFAULT 0
);
INSERT INTO handoff_status_counts (status, n)
    SELECT s.value, (SELECT count(*) FROM handoffs WHERE status = s.value)
    FROM json_each('{json.dumps(list(STATUSES))}') AS s
    WHERE NOT EXISTS (SELECT 1 FROM handoff_status_counts);
CREATE TRIGGER IF NOT EXISTS handoffs_count_insert AFTER INSERT ON handoffs
BEGIN UPDATE handoff_status_counts SET n = n + 1 WHERE status = NEW.status; END;
CREATE TRIGGER IF NOT EXISTS handoffs_count_delete AFTER DELETE ON handoffs
BEGIN UPDATE handoff_status_counts SET n = n - 1 WHERE status = OLD.status; END;
CREATE TRIGGER IF NOT EXISTS handoffs_count_update AFTER UPDATE OF status ON handoffs
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE handoff_status_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE handoff_status_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL REFERENCES handoffs (reference) ON DELETE CASCADE,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_reference ON notes (reference);

CREATE TABLE IF NOT EXISTS status_changes (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL REFERENCES handoffs (reference) ON DELETE CASCADE,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS status_changes_reference ON status_changes (reference);

CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ({_quoted(AUDIT_ACTIONS)})),
    reference TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_reference ON audit_log (reference);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE IF NOT EXISTS staff_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'staff' CHECK (role IN ('staff', 'admin')),
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES staff_users (username) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    csrf_token TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_sessions_username ON staff_sessions (username);
"""

# Plain words for staff (queue, handoff page, Markdown export). Unknown values show as-is.
LABELS: dict[str, dict[Any, str]] = {
    "status": {"new": "New", "in_progress": "In progress", "closed": "Closed"},
    "nation": {
        "england-wales": "England or Wales",
        "scotland": "Scotland",
        "northern-ireland": "Northern Ireland",
        "skipped": "They chose not to say",
    },
    "role": {
        "victim": "It happened to them",
        "witness": "They saw it happen (a witness)",
        "someone_else": "They are asking for someone else",
    },
    "what_happened": {
        "domestic_abuse": "Domestic abuse",
        "sexual_violence": "Sexual violence",
        "assault": "Assault",
        "hate_crime": "Hate crime",
        "modern_slavery": "Modern slavery",
        "labour_exploitation": "Labour exploitation",
        "theft_fraud": "Theft or fraud",
        "other": "Something else",
        "skipped": "They chose not to say",
    },
    "danger_now": {
        "safe": "They said they are safe now",
        "not_safe": "They said they are NOT safe now",
        "unsure": "They are not sure whether they are safe",
        "skipped": "They chose not to say",
    },
    "immigration_fear": {
        True: "Yes, they are worried about immigration enforcement",
        False: "They did not say they are worried about immigration enforcement",
    },
    "service": {
        "police": "the police",
        "health": "a health service",
        "school": "a school",
        "housing": "housing or the council",
        "employer": "an employer",
        "landlord": "a landlord",
    },
    "contact_method": {
        "phone": "Phone call",
        "text": "Text message",
        "email": "Email",
        "self": "They will contact Liberty themselves",
        "none": "They do not want to be contacted",
    },
    "may_leave_message": {
        "yes": "Yes",
        "no": "No: do not leave a message",
        "unknown": "Not asked",
    },
    "may_say_who": {
        "yes": "Yes",
        "no": "No: do not say who is calling",
        "unknown": "Not asked",
    },
}
NOT_GIVEN = "Not given"


def label(kind: str, value: Any) -> str:
    """Plain words for one stored value."""
    if value is None or value == "":
        return NOT_GIVEN
    if isinstance(value, list):
        return ", ".join(label(kind, v) for v in value) if value else NOT_GIVEN
    return LABELS.get(kind, {}).get(value, str(value))


class HandoffNotFound(LookupError):
    """No handoff has this reference (or it has been deleted)."""


class HandoffError(ValueError):
    """A handoff request or change is not valid (the message says which field)."""


@dataclass
class HandoffRequest:
    """What the Rasa action passes to `HandoffStore.create`.

    `transcript` must already be redacted; it is stored as given. `contact_detail` is
    encrypted before it is written; it is dropped when the method is "self" or "none".
    Only the triage slots (role, what_happened, danger_now, immigration_fear, service) are
    kept from `situation`. Neither the detail nor the transcript appears in `repr()`.
    """

    nation: str | None = None
    situation: dict[str, Any] = field(default_factory=dict)
    articles_shown: list[str] = field(default_factory=list)
    transcript: list[dict[str, str]] = field(default_factory=list, repr=False)
    contact_method: str = "none"
    contact_detail: str | None = field(default=None, repr=False)
    safe_times: str | None = None
    may_leave_message: str = "unknown"
    may_say_who: str = "unknown"


def _yes_no(value: Any, name: str) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text not in YES_NO_UNKNOWN:
        raise HandoffError(f"{name} must be one of {', '.join(YES_NO_UNKNOWN)}")
    return text


def _clean_scalar(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value.strip()[:100]
    raise HandoffError(f"situation[{name!r}] must be a word, a yes/no or a list of words")


def _validated(request: HandoffRequest) -> dict[str, Any]:
    method = (request.contact_method or "none").strip().lower()
    if method not in CONTACT_METHODS:
        raise HandoffError(f"contact_method must be one of {', '.join(CONTACT_METHODS)}")
    detail = request.contact_detail.strip() if isinstance(request.contact_detail, str) else None
    if request.contact_detail is not None and not isinstance(request.contact_detail, str):
        raise HandoffError("contact_detail must be text or None")
    if method not in METHODS_WITH_DETAIL or not detail:
        detail = None  # nothing to keep: never store a detail the person did not need to give

    situation: dict[str, Any] = {}
    for key in SITUATION_KEYS:
        value = (request.situation or {}).get(key)
        if isinstance(value, (list, tuple)):
            situation[key] = [_clean_scalar(v, key) for v in value]
        else:
            situation[key] = _clean_scalar(value, key)

    articles = request.articles_shown or []
    if not isinstance(articles, (list, tuple)) or not all(isinstance(a, str) for a in articles):
        raise HandoffError("articles_shown must be a list of article ids")

    transcript = []
    for turn in request.transcript or []:
        if not isinstance(turn, dict) or not isinstance(turn.get("text"), str):
            raise HandoffError("transcript must be a list of {speaker, text}")
        speaker = {"user": "person"}.get(turn.get("speaker"), turn.get("speaker"))
        if speaker not in ("person", "bot"):
            raise HandoffError("transcript speaker must be 'person' or 'bot'")
        transcript.append({"speaker": speaker, "text": turn["text"]})

    nation = request.nation.strip().lower() if isinstance(request.nation, str) else None
    safe_times = request.safe_times.strip() if isinstance(request.safe_times, str) else None
    return {
        "nation": nation or None,
        "situation_summary": json.dumps(situation, ensure_ascii=False),
        "articles_shown": json.dumps(list(articles), ensure_ascii=False),
        "transcript": json.dumps(transcript, ensure_ascii=False),
        "contact_method": method,
        "detail": detail,
        "safe_times": (safe_times or None) and safe_times[:500],
        "may_leave_message": _yes_no(request.may_leave_message, "may_leave_message"),
        "may_say_who": _yes_no(request.may_say_who, "may_say_who"),
    }


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def to_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def from_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def _bound(value: date | datetime | str | None, *, end: bool) -> str | None:
    """A filter bound as a stored timestamp. A plain date means the whole day (UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(
                value.replace("Z", "+00:00")
            )
        except ValueError as error:
            raise HandoffError("dates must look like 2025-01-31") from error
    if isinstance(value, datetime):
        return to_timestamp(value)
    moment = datetime.combine(value, time.min, tzinfo=timezone.utc)
    if end:
        moment += timedelta(days=1)
    return to_timestamp(moment)


def _check_text(value: Any, name: str, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HandoffError(f"{name} must not be empty")
    if len(value) > max_chars:
        raise HandoffError(f"{name} must be at most {max_chars} characters")
    return value


def md_escape(text: Any) -> str:
    """Text made inert in Markdown (and the HTML a Markdown viewer would render)."""
    out = []
    for ch in str(text):
        if ch in "\\`*_{}[]()#+-.!|<>~=":
            out.append("\\" + ch)
        elif ch == "&":
            out.append("&amp;")
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


class HandoffStore:
    """The handoff database. Safe to share between threads (one connection, one lock)."""

    def __init__(
        self,
        db_path: str | Path | None = None,
        *,
        settings: Settings | None = None,
        encryption_key: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings or get_settings()
        self.path = Path(db_path) if db_path is not None else self.settings.handoffs_db
        self._key = encryption_key
        self._cipher: ContactCipher | None = None
        self.clock = clock
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        is_new = not self.path.exists()
        self._conn = sqlite3.connect(
            str(self.path), timeout=10, isolation_level=None, check_same_thread=False
        )
        if is_new:
            os.chmod(self.path, 0o600)
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=10000",
            "secure_delete=ON",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            self._conn.execute(f"PRAGMA {pragma}")
        self.db = sqlite_utils.Database(self._conn)
        with self._lock:
            # executescript() commits first, so the script brings its own transaction.
            self._conn.executescript(
                "BEGIN IMMEDIATE;" + SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )

    # -- plumbing shared with bot.web.staff.accounts ----------------------------------

    def now(self) -> datetime:
        return self.clock()

    def timestamp(self) -> str:
        return to_timestamp(self.clock())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): all or nothing."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        """Rows as dicts, read completely (no read transaction is left open)."""
        with self._lock:
            return list(self.db.query(sql, params))

    def audit_row(
        self,
        conn: sqlite3.Connection,
        actor: str,
        action: str,
        reference: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one audit row. `detail` must never hold a contact detail or transcript."""
        if action not in AUDIT_ACTIONS:
            raise HandoffError(f"unknown audit action {action!r}")
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, reference, detail) VALUES (?, ?, ?, ?, ?)",
            (self.timestamp(), str(actor)[:100], action, reference,
             None if detail is None else str(detail)[:200]),
        )

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the database and truncate it, so deleted text leaves the WAL."""
        with self._lock:
            return tuple(self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HandoffStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _get_cipher(self) -> ContactCipher:
        if self._cipher is None:
            key = self._key if self._key is not None else self.settings.encryption_key
            self._cipher = ContactCipher(key)
        return self._cipher

    @staticmethod
    def _ref(reference: str) -> str:
        normal = normalize_reference(reference)
        if normal is None:
            raise HandoffNotFound(reference)
        return normal

    def _row(self, conn: sqlite3.Connection, reference: str) -> sqlite3.Row | tuple:
        row = conn.execute(
            "SELECT status FROM handoffs WHERE reference = ?", (reference,)
        ).fetchone()
        if row is None:
            raise HandoffNotFound(reference)
        return row

    # -- the public API ----------------------------------------------------------------

    def create(self, request: HandoffRequest) -> str:
        """Store a handoff; returns its new reference. The contact detail is encrypted."""
        values = _validated(request)
        detail = values.pop("detail")
        encrypted = self._get_cipher().encrypt(detail) if detail else None
        masked = mask(detail, values["contact_method"]) if detail else None
        now = self.timestamp()
        for _attempt in range(20):
            reference = new_reference()
            try:
                with self.transaction() as conn:
                    conn.execute(
                        """INSERT INTO handoffs (reference, created_at, updated_at, status,
                               nation, situation_summary, articles_shown, transcript,
                               contact_method, contact_detail_encrypted, contact_detail_masked,
                               safe_times, may_leave_message, may_say_who)
                           VALUES (?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        (reference, now, now, values["nation"], values["situation_summary"],
                         values["articles_shown"], values["transcript"],
                         values["contact_method"], encrypted, masked, values["safe_times"],
                         values["may_leave_message"], values["may_say_who"]),
                    )
                return reference
            except sqlite3.IntegrityError as error:
                if "handoffs.reference" not in str(error):
                    raise
        raise RuntimeError("Could not find an unused handoff reference")  # pragma: no cover

    def get(self, reference: str, actor: str, *, audit: bool = True) -> dict[str, Any]:
        """One handoff with its notes and status history; the contact detail is masked.

        Writes a 'view' audit row (the staff app passes audit=False when it is already
        auditing the same request as a 'reveal').
        """
        reference = self._ref(reference)
        with self.transaction() as conn:
            self._row(conn, reference)
            if audit:
                self.audit_row(conn, actor, "view", reference)
        return self._load(reference)

    def _load(self, reference: str) -> dict[str, Any]:
        rows = self.query("SELECT * FROM handoffs WHERE reference = ?", (reference,))
        if not rows:
            raise HandoffNotFound(reference)
        row = rows[0]
        situation = json.loads(row["situation_summary"] or "{}")
        return {
            "reference": row["reference"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "status": row["status"],
            "closed_at": row["closed_at"],
            "assigned_to": row["assigned_to"],
            "nation": row["nation"],
            "situation": situation,
            "what_happened": situation.get("what_happened"),
            "articles_shown": json.loads(row["articles_shown"] or "[]"),
            "transcript": json.loads(row["transcript"] or "[]"),
            "contact_method": row["contact_method"],
            "contact_detail_masked": row["contact_detail_masked"],
            "has_contact_detail": row["contact_detail_encrypted"] is not None,
            "safe_times": row["safe_times"],
            "may_leave_message": row["may_leave_message"],
            "may_say_who": row["may_say_who"],
            "notes": self.query(
                "SELECT id, author, created_at, text FROM notes WHERE reference = ? "
                "ORDER BY created_at, id", (reference,)),
            "status_changes": self.query(
                "SELECT author, created_at, from_status, to_status FROM status_changes "
                "WHERE reference = ? ORDER BY created_at, id", (reference,)),
        }

    def reveal(self, reference: str, actor: str) -> str | None:
        """The decrypted contact detail (None if none was given). Writes a 'reveal' row."""
        reference = self._ref(reference)
        rows = self.query(
            "SELECT contact_detail_encrypted FROM handoffs WHERE reference = ?", (reference,)
        )
        if not rows:
            raise HandoffNotFound(reference)
        token = rows[0]["contact_detail_encrypted"]
        try:
            detail = self._get_cipher().decrypt(token) if token else None
        except ContactCryptoError:
            with self.transaction() as conn:
                self.audit_row(conn, actor, "reveal", reference, "failed: wrong or missing key")
            raise
        with self.transaction() as conn:
            self.audit_row(conn, actor, "reveal", reference,
                           None if token else "no contact detail was given")
        return detail

    def _where(
        self,
        status: str | None,
        nation: str | None,
        what_happened: str | None,
        since: date | datetime | str | None,
        until: date | datetime | str | None,
    ) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if status:
            if status not in STATUSES:
                raise HandoffError(f"status must be one of {', '.join(STATUSES)}")
            clauses.append("status = ?")
            params.append(status)
        if nation:
            clauses.append("nation = ?")
            params.append(nation)
        if what_happened:
            clauses.append("what_happened = ?")
            params.append(what_happened)
        low, high = _bound(since, end=False), _bound(until, end=True)
        if low:
            clauses.append("created_at >= ?")
            params.append(low)
        if high:
            if isinstance(until, datetime) or (isinstance(until, str) and len(until) > 10):
                clauses.append("created_at <= ?")
            else:
                clauses.append("created_at < ?")
            params.append(high)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def list(
        self,
        status: str | None = None,
        nation: str | None = None,
        what_happened: str | None = None,
        since: date | datetime | str | None = None,
        until: date | datetime | str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        actor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Handoffs newest first, without transcripts or contact details.

        With `actor`, a 'list' audit row records who looked at the queue (and the filters).
        """
        where, params = self._where(status, nation, what_happened, since, until)
        limit = max(1, min(int(limit), 500))
        offset = max(0, int(offset))
        rows = self.query(
            "SELECT reference, created_at, updated_at, status, closed_at, assigned_to, nation,"
            " what_happened, situation_summary, contact_method FROM handoffs"
            f"{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        for row in rows:
            situation = json.loads(row.pop("situation_summary") or "{}")
            row["role"] = situation.get("role")
            row["danger_now"] = situation.get("danger_now")
        if actor is not None:
            shown = {
                "status": status, "nation": nation, "situation": what_happened,
                "since": since, "until": until,
            }
            detail = " ".join(f"{k}={v}" for k, v in shown.items() if v) or "all"
            with self.transaction() as conn:
                self.audit_row(conn, actor, "list", None, f"{detail} offset={offset}")
        return rows

    def counts(self) -> dict[str, int]:
        """How many handoffs have each status (every status is present)."""
        result = {status: 0 for status in STATUSES}
        for row in self.query("SELECT status, n FROM handoff_status_counts"):
            if row["status"] in result:
                result[row["status"]] = row["n"]
        return result

    def add_note(self, reference: str, author: str, text: str) -> int:
        """Add a staff note; returns its id. Writes a 'note' audit row (not the text)."""
        reference = self._ref(reference)
        text = _check_text(text, "A note", NOTE_MAX_CHARS).strip()
        now = self.timestamp()
        with self.transaction() as conn:
            self._row(conn, reference)
            cursor = conn.execute(
                "INSERT INTO notes (reference, author, created_at, text) VALUES (?, ?, ?, ?)",
                (reference, author, now, text),
            )
            conn.execute("UPDATE handoffs SET updated_at = ? WHERE reference = ?",
                         (now, reference))
            self.audit_row(conn, author, "note", reference, "note added")
            return int(cursor.lastrowid)

    def set_status(self, reference: str, author: str, status: str) -> None:
        """Move a handoff to new / in_progress / closed (closing starts the retention clock)."""
        reference = self._ref(reference)
        if status not in STATUSES:
            raise HandoffError(f"status must be one of {', '.join(STATUSES)}")
        now = self.timestamp()
        with self.transaction() as conn:
            (current,) = self._row(conn, reference)
            if current == status:
                return
            conn.execute(
                "INSERT INTO status_changes (reference, author, created_at, from_status,"
                " to_status) VALUES (?, ?, ?, ?, ?)",
                (reference, author, now, current, status),
            )
            conn.execute(
                "UPDATE handoffs SET status = ?, updated_at = ?, closed_at = ? "
                "WHERE reference = ?",
                (status, now, now if status == "closed" else None, reference),
            )
            self.audit_row(conn, author, "status", reference, f"{current} -> {status}")

    def assign(self, reference: str, username: str | None, *, actor: str | None = None) -> None:
        """Assign a handoff to a staff member (None: unassign)."""
        reference = self._ref(reference)
        with self.transaction() as conn:
            self._row(conn, reference)
            conn.execute(
                "UPDATE handoffs SET assigned_to = ?, updated_at = ? WHERE reference = ?",
                (username, self.timestamp(), reference),
            )
            self.audit_row(conn, actor or username or "unknown", "assign", reference,
                           f"assigned to {username}" if username else "unassigned")

    def _delete_rows(self, conn: sqlite3.Connection, references: list[str]) -> None:
        for start in range(0, len(references), 500):
            chunk = references[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for table in ("notes", "status_changes", "handoffs"):
                conn.execute(f"DELETE FROM {table} WHERE reference IN ({marks})", chunk)

    def delete(self, reference: str, actor: str) -> None:
        """Delete a handoff with its notes and status history now (audited)."""
        reference = self._ref(reference)
        with self.transaction() as conn:
            self._row(conn, reference)
            self._delete_rows(conn, [reference])
            self.audit_row(conn, actor, "delete", reference)
        self.checkpoint()

    def export(self, reference: str, actor: str, *, fmt: str = "json") -> dict[str, Any]:
        """The handoff as data for export (masked detail). Writes an 'export' audit row."""
        reference = self._ref(reference)
        with self.transaction() as conn:
            self._row(conn, reference)
            self.audit_row(conn, actor, "export", reference, fmt)
        return self._load(reference)

    def export_markdown(self, reference: str, actor: str) -> str:
        """A Markdown summary to download (masked contact detail). Audited as 'export'."""
        h = self.export(reference, actor, fmt="markdown")
        s = h["situation"]
        lines = [
            f"# Handoff {h['reference']}",
            "",
            f"Exported {to_timestamp(self.now())[:16].replace('T', ' ')} UTC by "
            f"{md_escape(actor)}. Confidential: the transcript is redacted and the contact "
            "detail is masked. Delete this file when it is no longer needed.",
            "",
            "## Summary",
            "",
            f"- Created: {h['created_at'][:16].replace('T', ' ')} UTC",
            f"- Status: {label('status', h['status'])}",
            f"- Assigned to: {md_escape(h['assigned_to'] or 'nobody')}",
            f"- Where: {md_escape(label('nation', h['nation']))}",
            f"- Who: {md_escape(label('role', s.get('role')))}",
            f"- What happened: {md_escape(label('what_happened', s.get('what_happened')))}",
            f"- Danger now: {md_escape(label('danger_now', s.get('danger_now')))}",
            "- Worried about immigration enforcement: "
            f"{md_escape(label('immigration_fear', s.get('immigration_fear')))}",
            f"- Services mentioned: {md_escape(label('service', s.get('service')))}",
            "",
            "## Contact",
            "",
            f"- How: {md_escape(label('contact_method', h['contact_method']))}",
            f"- Detail: {md_escape(h['contact_detail_masked'] or 'none given')}"
            + (" (masked; reveal it in the staff app)" if h["has_contact_detail"] else ""),
            f"- Safe times: {md_escape(h['safe_times'] or NOT_GIVEN)}",
            f"- May leave a message: {label('may_leave_message', h['may_leave_message'])}",
            f"- May say who is calling: {label('may_say_who', h['may_say_who'])}",
            "",
            "## Articles shown",
            "",
        ]
        lines += [f"- {md_escape(a)}" for a in h["articles_shown"]] or ["- none"]
        lines += ["", "## Conversation (redacted)", ""]
        for turn in h["transcript"]:
            who = "Person" if turn["speaker"] == "person" else "Bot"
            lines += [f"**{who}:** {md_escape(turn['text'])}", ""]
        if not h["transcript"]:
            lines += ["No transcript.", ""]
        lines += ["## Notes", ""]
        lines += [
            f"- {n['created_at'][:16].replace('T', ' ')} {md_escape(n['author'])}: "
            f"{md_escape(n['text'])}" for n in h["notes"]
        ] or ["- none"]
        lines += ["", "## Status history", ""]
        lines += [
            f"- {c['created_at'][:16].replace('T', ' ')} {md_escape(c['author'])}: "
            f"{label('status', c['from_status'])} to {label('status', c['to_status'])}"
            for c in h["status_changes"]
        ] or ["- no changes"]
        return "\n".join(lines) + "\n"

    def purge(self, retention_days: int | None = None, now: datetime | None = None) -> int:
        """Delete closed handoffs closed more than `retention_days` ago (default: settings).

        Returns how many were removed. Each gets a 'purge' audit row (actor "system").
        """
        days = self.settings.handoff_retention_days if retention_days is None else retention_days
        cutoff = to_timestamp((now or self.now()) - timedelta(days=days))
        with self.transaction() as conn:
            references = [
                r for (r,) in conn.execute(
                    "SELECT reference FROM handoffs WHERE status = 'closed' AND closed_at < ?",
                    (cutoff,),
                )
            ]
            self._delete_rows(conn, references)
            for reference in references:
                self.audit_row(conn, "system", "purge", reference,
                               f"closed more than {days} days ago")
        if references:
            self.checkpoint()
        return len(references)

    def audit(self, limit: int = 200, offset: int = 0,
              reference: str | None = None) -> list[dict[str, Any]]:
        """Audit rows, newest first."""
        limit = max(1, min(int(limit), 5000))
        if reference:
            return self.query(
                "SELECT * FROM audit_log WHERE reference = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                (reference, limit, max(0, offset)))
        return self.query("SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
                          (limit, max(0, offset)))
