"""Staff accounts and sessions (tables in the handoff store, bot.handoff.store, on SQLite or
PostgreSQL; the same SQL on both; no web framework here).

- Passwords: argon2id via argon2-cffi (rehashed on sign-in when parameters change);
  at least 12 characters.
- Sign-in: the same answer for an unknown user, a wrong password, a disabled or a locked
  account; an unknown username costs the same argon2 work as a real one. After
  STAFF_LOCKOUT_ATTEMPTS failures in a row an account is locked for STAFF_LOCKOUT_MINUTES,
  and while locked even the right password is refused. Failures, lockouts and sign-ins are
  audited. A username nobody has is never written down (people type passwords into the
  username box); it is audited as "unknown".
- Sessions: a random 256-bit token in the cookie, only its SHA-256 in the database, with a
  per-session CSRF token; idle expiry (STAFF_IDLE_MINUTES) and absolute expiry
  (STAFF_SESSION_HOURS); a new token at every sign-in; disabling a user ends their sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.handoff.store import HandoffStore, from_timestamp, to_timestamp
from bot.settings import Settings

ROLES = ("staff", "admin")
PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 1024
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")


class AccountError(ValueError):
    """A staff account cannot be created or changed (the message says why)."""


@dataclass(frozen=True)
class StaffSession:
    username: str
    role: str
    csrf_token: str
    created_at: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_password(password: str, username: str = "") -> None:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_CHARS:
        raise AccountError(f"The password must be at least {PASSWORD_MIN_CHARS} characters.")
    if len(password) > PASSWORD_MAX_CHARS:
        raise AccountError(f"The password must be at most {PASSWORD_MAX_CHARS} characters.")
    if username and username.lower() in password.lower():
        raise AccountError("The password must not contain the username.")
    if len(set(password)) < 4:
        raise AccountError("The password is too repetitive.")


class StaffAccounts:
    def __init__(
        self,
        store: HandoffStore,
        settings: Settings | None = None,
        *,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or store.settings
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # -- accounts ----------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str = "staff") -> None:
        username = (username or "").strip().lower()
        if not USERNAME_PATTERN.match(username):
            raise AccountError(
                "A username is 2-40 characters: lower-case letters, digits, '.', '_' or '-'."
            )
        if role not in ROLES:
            raise AccountError(f"The role must be one of {', '.join(ROLES)}.")
        check_password(password, username)
        password_hash = self.hasher.hash(password)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM staff_users WHERE username = ?", (username,)).fetchone():
                raise AccountError(f"There is already a user called {username}.")
            conn.execute(
                "INSERT INTO staff_users (username, password_hash, role, created_at)"
                " VALUES (?, ?, ?, ?)",
                (username, password_hash, role, self.store.timestamp()),
            )

    def disable_user(self, username: str) -> None:
        """Stop a user signing in, and end every session they have."""
        with self.store.transaction() as conn:
            changed = conn.execute(
                "UPDATE staff_users SET disabled = 1 WHERE username = ?", (username,)
            ).rowcount
            if not changed:
                raise AccountError(f"There is no user called {username}.")
            conn.execute("DELETE FROM staff_sessions WHERE username = ?", (username,))

    def list_users(self) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT username, role, created_at, disabled, locked_until, failed_attempts"
            " FROM staff_users ORDER BY username"
        )

    # -- signing in --------------------------------------------------------------------

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _burn(self, password: str) -> None:
        """Spend the same time as a real check, so timing does not reveal usernames."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._verify(self._dummy_hash, password)

    def authenticate(self, username: str, password: str) -> str | None:
        """The username if these credentials may sign in now, else None (audited)."""
        username = (username or "").strip().lower()[:100]
        password = password if isinstance(password, str) else ""
        if len(password) > PASSWORD_MAX_CHARS:
            password = password[:PASSWORD_MAX_CHARS + 1]
        rows = self.store.query(
            "SELECT username, password_hash, disabled, locked_until FROM staff_users"
            " WHERE username = ?", (username,),
        )
        if not rows:
            self._burn(password)
            with self.store.transaction() as conn:
                self.store.audit_row(conn, "unknown", "sign_in_failed", None, "unknown user")
            return None
        user = rows[0]
        now = self.store.now()
        if user["locked_until"] and from_timestamp(user["locked_until"]) > now:
            self._burn(password)
            with self.store.transaction() as conn:
                self.store.audit_row(conn, username, "sign_in_failed", None, "account locked")
            return None
        if user["disabled"]:
            self._burn(password)
            with self.store.transaction() as conn:
                self.store.audit_row(conn, username, "sign_in_failed", None, "account disabled")
            return None
        if not self._verify(user["password_hash"], password):
            self._record_failure(username)
            return None
        new_hash = None
        if self.hasher.check_needs_rehash(user["password_hash"]):
            new_hash = self.hasher.hash(password)
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE staff_users SET failed_attempts = 0, locked_until = NULL,"
                " password_hash = coalesce(?, password_hash) WHERE username = ?",
                (new_hash, username),
            )
            self.store.audit_row(conn, username, "sign_in")
        return username

    def _record_failure(self, username: str) -> None:
        limit = max(1, self.settings.staff_lockout_attempts)
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE staff_users SET failed_attempts = failed_attempts + 1"
                " WHERE username = ?", (username,),
            )
            (failures,) = conn.execute(
                "SELECT failed_attempts FROM staff_users WHERE username = ?", (username,)
            ).fetchone()
            self.store.audit_row(conn, username, "sign_in_failed", None, "wrong password")
            if failures >= limit:
                until = self.store.now() + timedelta(minutes=self.settings.staff_lockout_minutes)
                conn.execute(
                    "UPDATE staff_users SET failed_attempts = 0, locked_until = ?"
                    " WHERE username = ?", (to_timestamp(until), username),
                )
                self.store.audit_row(
                    conn, username, "lockout", None,
                    f"{failures} failed sign-ins; locked for "
                    f"{self.settings.staff_lockout_minutes} minutes",
                )

    # -- sessions ----------------------------------------------------------------------

    def create_session(self, username: str) -> tuple[str, StaffSession]:
        """A new session; returns the cookie token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)  # 256 bits
        csrf = secrets.token_urlsafe(32)
        now = self.store.now()
        stamp = to_timestamp(now)
        oldest = to_timestamp(now - timedelta(hours=self.settings.staff_session_hours))
        idle = to_timestamp(now - timedelta(minutes=self.settings.staff_idle_minutes))
        with self.store.transaction() as conn:
            # Tidy up: sessions past either limit can never be used again.
            conn.execute("DELETE FROM staff_sessions WHERE created_at < ? OR last_seen < ?",
                         (oldest, idle))
            conn.execute(
                "INSERT INTO staff_sessions (token_hash, username, created_at, last_seen,"
                " csrf_token) VALUES (?, ?, ?, ?, ?)",
                (token_hash(token), username, stamp, stamp, csrf),
            )
            (role,) = conn.execute(
                "SELECT role FROM staff_users WHERE username = ?", (username,)
            ).fetchone()
        return token, StaffSession(username, role, csrf, stamp)

    def session(self, token: str | None) -> StaffSession | None:
        """The live session for this cookie token, or None. Touches last_seen."""
        if not token or len(token) > 200:
            return None
        digest = token_hash(token)
        rows = self.store.query(
            "SELECT s.username, s.created_at, s.last_seen, s.csrf_token, u.role, u.disabled"
            " FROM staff_sessions s JOIN staff_users u ON u.username = s.username"
            " WHERE s.token_hash = ?", (digest,),
        )
        if not rows:
            return None
        row = rows[0]
        now = self.store.now()
        expired = (
            row["disabled"]
            or now - from_timestamp(row["last_seen"])
            > timedelta(minutes=self.settings.staff_idle_minutes)
            or now - from_timestamp(row["created_at"])
            > timedelta(hours=self.settings.staff_session_hours)
        )
        with self.store.transaction() as conn:
            if expired:
                conn.execute("DELETE FROM staff_sessions WHERE token_hash = ?", (digest,))
                return None
            conn.execute("UPDATE staff_sessions SET last_seen = ? WHERE token_hash = ?",
                         (to_timestamp(now), digest))
        return StaffSession(row["username"], row["role"], row["csrf_token"], row["created_at"])

    def end_session(self, token: str | None) -> None:
        if token:
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM staff_sessions WHERE token_hash = ?",
                             (token_hash(token),))
