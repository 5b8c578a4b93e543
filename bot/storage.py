"""The SQL plumbing shared by the stores that are written (handoffs, review inbox).

One code path for two databases, through SQLAlchemy Core:

- SQLite (the default): one file under DATA_DIR, created with mode 0600, one connection
  shared by the threads of a process behind a lock. Every connection gets the same PRAGMAs:
  WAL, a 10 s busy timeout, `secure_delete` (deleted rows are overwritten with zeros),
  `synchronous=NORMAL` and foreign keys. Writes start with `BEGIN IMMEDIATE`, so two
  processes (the action server and the web app) wait for each other instead of failing
  half-way; `checkpoint()` truncates the WAL so deleted text does not linger there.
- PostgreSQL (`postgresql://` URL): a small connection pool. Every write transaction first
  takes a transaction-level advisory lock (`pg_advisory_xact_lock`), so writers queue one
  at a time exactly as they do on SQLite with BEGIN IMMEDIATE, and readers are never
  blocked. PostgreSQL has no `secure_delete`: a deleted row cannot be read through SQL, but
  its bytes stay in the data files and WAL until PostgreSQL reuses the space;
  `checkpoint()` runs a plain VACUUM on the given tables so that happens sooner.

SQL is written once for both, with `?` (or `:name`) placeholders; the few statements that
differ (DDL, triggers) are chosen by `Database.dialect`.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "busy_timeout=10000",
    "secure_delete=ON",
    "synchronous=NORMAL",
    "foreign_keys=ON",
)
DIALECTS = ("sqlite", "postgresql")


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def as_url(target: str | Path) -> str:
    """A SQLAlchemy URL for a URL or a plain file path (a path means a SQLite file)."""
    text = str(target)
    return text if "://" in text else sqlite_url(text)


def _bound(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[sa.TextClause, dict]:
    """`?` placeholders (with a sequence) become named ones; a dict is used as it is."""
    if isinstance(params, dict):
        return sa.text(sql), params
    values = list(params)
    names = iter(range(len(values)))
    return sa.text(re.sub(r"\?", lambda _m: f":p{next(names)}", sql)), {
        f"p{i}": value for i, value in enumerate(values)
    }


class Connection:
    """A connection inside `Database.transaction()`, with the sqlite3-like `execute`."""

    def __init__(self, connection: sa.engine.Connection, dialect: str) -> None:
        self.sa = connection
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Run one statement; the result has fetchone(), fetchall(), rowcount, iteration."""
        return self.sa.execute(*_bound(sql, params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        statement, _ = _bound(sql, rows[0])
        self.sa.execute(statement, [{f"p{i}": v for i, v in enumerate(row)} for row in rows])


class Database:
    """An engine for a SQLite file or a PostgreSQL database, with the locking rules above."""

    def __init__(self, url: str | Path, *, lock_name: str) -> None:
        self.url = as_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in DIALECTS:
            raise ValueError(
                f"Unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
                "use a file path, sqlite:///path or postgresql://user@host/db"
            )
        # Writers on PostgreSQL queue on this advisory lock (a stable 32-bit number).
        self.lock_key = zlib.crc32(f"safe-report:{lock_name}".encode())
        self.path: Path | None = None
        if self.dialect == "sqlite":
            self.path = Path(parsed.database or "")
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            is_new = not self.path.exists()
            self.engine = sa.create_engine(
                self.url, future=True, poolclass=StaticPool,
                connect_args={"check_same_thread": False, "timeout": 10},
            )
            sa.event.listen(self.engine, "connect", _sqlite_on_connect)
            self._lock: threading.RLock | nullcontext = threading.RLock()
            with self.engine.connect():
                pass  # creates the file
            if is_new:
                os.chmod(self.path, 0o600)
        else:
            self.engine = sa.create_engine(
                self.url, future=True, pool_pre_ping=True, pool_size=2, max_overflow=6
            )
            self._lock = nullcontext()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, all or nothing, one writer at a time (see the module doc)."""
        with self._lock, self.engine.connect() as connection:
            if self.is_sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": self.lock_key})
            try:
                yield Connection(connection, self.dialect)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, read completely (no read transaction is left open)."""
        with self._lock, self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(*_bound(sql, params)).mappings()]
            connection.rollback()
            return rows

    def run_script(self, statements: Sequence[str]) -> None:
        """DDL, in one write transaction (so two processes starting at once do not race)."""
        with self.transaction() as connection:
            for statement in statements:
                connection.sa.exec_driver_sql(statement)

    def checkpoint(self, tables: Sequence[str]) -> tuple[int, int, int]:
        """After deleting: SQLite copies the WAL into the file and truncates it (returns
        wal_checkpoint's busy, log and checkpointed counts); PostgreSQL VACUUMs `tables`."""
        with self._lock, self.engine.connect() as connection:
            if self.is_sqlite:
                row = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                return tuple(row)
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM " + ", ".join(tables)
            )
            return (0, 0, 0)

    def close(self) -> None:
        with self._lock:
            self.engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # No implicit transactions from the sqlite3 module: `transaction()` says BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    for pragma in SQLITE_PRAGMAS:
        dbapi_connection.execute(f"PRAGMA {pragma}")
