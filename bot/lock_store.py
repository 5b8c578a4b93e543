"""A lock store in a SQLite file, so one machine can run several Rasa workers without Redis.

Rasa serialises the messages of one conversation with ticket locks (rasa.core.lock): each
message takes a ticket, waits until its ticket is served, and gives it back. Rasa only runs
`SANIC_WORKERS` > 1 when those tickets live outside one process; upstream that means Redis.
Here they live in `DATA_DIR/locks.db`:

- one row per conversation that has a message in flight (`conversation_id`, the
  serialised `TicketLock`); the row goes when nobody is waiting, so the file stays tiny
  and holds no text, only the random sender ids of conversations being answered now;
- every read-modify-write (issue a ticket, drop expired tickets, give a ticket back) runs
  in one `BEGIN IMMEDIATE` transaction, so two workers never issue the same ticket number
  or lose each other's ticket;
- WAL mode and a busy timeout, so workers wait for each other instead of failing.

Configured by bot.stack.write_endpoints when SANIC_WORKERS > 1 and LOCK_STORE_URL is
empty:

    lock_store:
      type: bot.lock_store.SQLiteLockStore
      path: /srv/safe-report/var/locks.db

Only for workers on one machine: a SQLite file must not be shared over a network file
system. Across machines use Redis (LOCK_STORE_URL).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 10.0
SCHEMA = "CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, data TEXT NOT NULL)"


def default_path() -> Path:
    from bot.settings import get_settings

    return get_settings().data_dir / "locks.db"


class SQLiteLockStore(LockStore):
    """Ticket locks in a SQLite file shared by the Rasa workers of one machine."""

    def __init__(self, endpoint_config: Any = None, path: str | Path | None = None) -> None:
        kwargs = getattr(endpoint_config, "kwargs", None) or {}
        configured = path or kwargs.get("path") or getattr(endpoint_config, "url", None)
        self.path = Path(configured) if configured else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._transaction() as connection:
            connection.execute(SCHEMA)
        super().__init__()

    # Connections are per process and per thread: Sanic workers are separate processes.
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            # Locks need not survive a power cut: after a crash every ticket is stale anyway.
            connection.execute("PRAGMA synchronous=OFF")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the write lock is taken at BEGIN, so reads are current."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @staticmethod
    def _read(connection: sqlite3.Connection, conversation_id: str) -> TicketLock | None:
        row = connection.execute(
            "SELECT data FROM locks WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return TicketLock.from_dict(json.loads(row[0])) if row else None

    @staticmethod
    def _write(connection: sqlite3.Connection, lock: TicketLock) -> None:
        connection.execute(
            "INSERT INTO locks (conversation_id, data) VALUES (?, ?) "
            "ON CONFLICT(conversation_id) DO UPDATE SET data = excluded.data",
            (lock.conversation_id, lock.dumps()),
        )

    # The LockStore interface.
    def get_lock(self, conversation_id: str) -> TicketLock | None:
        return self._read(self._connection(), conversation_id)

    def delete_lock(self, conversation_id: str) -> None:
        with self._transaction() as connection:
            deleted = connection.execute(
                "DELETE FROM locks WHERE conversation_id = ?", (conversation_id,)
            ).rowcount
        self._log_deletion(conversation_id, bool(deleted))

    def save_lock(self, lock: TicketLock) -> None:
        with self._transaction() as connection:
            self._write(connection, lock)

    # Read-modify-write operations, each atomic across workers.
    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            with self._transaction() as connection:
                lock = self._read(connection, conversation_id) or self.create_lock(
                    conversation_id
                )
                ticket = lock.issue_ticket(lock_lifetime)
                self._write(connection, lock)
            return ticket
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: str) -> None:
        with self._transaction() as connection:
            lock = self._read(connection, conversation_id)
            if lock:
                lock.remove_expired_tickets()
                self._write(connection, lock)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        with self._transaction() as connection:
            lock = self._read(connection, conversation_id)
            if lock:
                lock.remove_ticket_for(ticket_number)
                self._write(connection, lock)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket back, and drop the row when nobody else is waiting."""
        with self._transaction() as connection:
            lock = self._read(connection, conversation_id)
            if not lock:
                return
            lock.remove_ticket_for(ticket_number)
            if lock.is_someone_waiting():
                self._write(connection, lock)
            else:
                connection.execute(
                    "DELETE FROM locks WHERE conversation_id = ?", (conversation_id,)
                )
