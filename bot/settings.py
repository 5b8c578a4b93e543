"""Every setting of safe-report, read once, in one place.

Values come from the process environment, then `.env` (git-ignored), then
`.env.example` (committed, documents every key). Nothing else in the package
reads `os.environ` for project settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _layered_values(root: Path, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """`.env.example` < `.env` < real environment < `overrides`."""
    values: dict[str, str] = {}
    for name in (".env.example", ".env"):
        path = root / name
        if path.exists():
            values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    values.update(overrides or {})
    return values


def _int(values: dict[str, str], key: str, default: int) -> int:
    raw = values.get(key, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError as error:
        raise ValueError(f"Setting {key} must be a whole number, not {raw!r}") from error


@dataclass(frozen=True)
class AdviceLine:
    """Liberty's advice line. Empty by default: we never invent its number or hours."""

    name: str = "Liberty Advice and Information"
    phone: str = ""
    web: str = ""
    # Same format as knowledge/contacts.yml hours, e.g. "mon-fri 10:00-16:00;wed 18:00-20:00".
    hours: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.phone or self.web)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    rasa_port: int = 5005
    action_port: int = 5055
    web_port: int = 8000
    bind_host: str = "127.0.0.1"
    rasa_api_token: str = ""
    encryption_key: str = ""
    session_secret: str = ""
    conversation_retention_hours: int = 24
    handoff_retention_days: int = 30
    inbox_retention_days: int = 30
    purge_interval_minutes: int = 15
    inbox_confidence_threshold: float = 0.6
    staff_idle_minutes: int = 20
    staff_session_hours: int = 8
    staff_lockout_attempts: int = 5
    staff_lockout_minutes: int = 15
    exit_url: str = "https://www.bbc.co.uk/weather"
    max_message_chars: int = 2000
    log_level: str = "INFO"
    tracker_store_url: str = ""
    lock_store_url: str = ""
    # SQLAlchemy URLs (postgresql://...) of the stores that are written. Empty: SQLite files
    # under data_dir (handoffs.db, inbox.db).
    handoff_database_url: str = ""
    inbox_database_url: str = ""
    sanic_workers: int = 1
    advice_line: AdviceLine = field(default_factory=AdviceLine)
    # Origins (exact "scheme://host[:port]" strings) whose pages may embed /widget.js and
    # call the chat API from the browser (CORS). Empty: the chat works on its own site only.
    widget_allowed_origins: tuple[str, ...] = ()
    project_root: Path = PROJECT_ROOT

    # Paths derived from data_dir: all runtime data and nothing else lives there.
    @property
    def tracker_db(self) -> Path:
        return self.data_dir / "conversations.db"

    @property
    def knowledge_db(self) -> Path:
        return self.data_dir / "knowledge.db"

    @property
    def handoffs_db(self) -> Path:
        return self.data_dir / "handoffs.db"

    @property
    def inbox_db(self) -> Path:
        return self.data_dir / "inbox.db"

    @property
    def tracker_url(self) -> str:
        """SQLAlchemy URL of the conversation (tracker) store."""
        return self.tracker_store_url or f"sqlite:///{self.tracker_db}"

    @property
    def handoffs_url(self) -> str:
        """SQLAlchemy URL of the handoff store (handoffs, notes, audit log, staff accounts)."""
        return self.handoff_database_url or f"sqlite:///{self.handoffs_db}"

    @property
    def inbox_url(self) -> str:
        """SQLAlchemy URL of the review inbox."""
        return self.inbox_database_url or f"sqlite:///{self.inbox_db}"

    @property
    def models_dir(self) -> Path:
        return self.project_root / "models"

    @property
    def spacy_nlu_pipeline(self) -> Path:
        return self.project_root / "build" / "spacy" / "safe_report_nlu"

    @property
    def spacy_pii_pipeline(self) -> Path:
        return self.project_root / "build" / "spacy" / "safe_report_pii"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"


def load_settings(root: Path = PROJECT_ROOT, overrides: dict[str, str] | None = None) -> Settings:
    """Read settings afresh (tests use this with their own environment)."""
    values = _layered_values(root, overrides)
    data_dir = Path(values.get("DATA_DIR") or "var")
    if not data_dir.is_absolute():
        data_dir = root / data_dir
    return Settings(
        data_dir=data_dir,
        rasa_port=_int(values, "RASA_PORT", 5005),
        action_port=_int(values, "ACTION_PORT", 5055),
        web_port=_int(values, "WEB_PORT", 8000),
        bind_host=values.get("BIND_HOST") or "127.0.0.1",
        rasa_api_token=values.get("RASA_API_TOKEN", ""),
        encryption_key=values.get("SAFE_REPORT_ENCRYPTION_KEY", ""),
        session_secret=values.get("STAFF_SESSION_SECRET", ""),
        conversation_retention_hours=_int(values, "CONVERSATION_RETENTION_HOURS", 24),
        handoff_retention_days=_int(values, "HANDOFF_RETENTION_DAYS", 30),
        inbox_retention_days=_int(values, "INBOX_RETENTION_DAYS", 30),
        purge_interval_minutes=_int(values, "PURGE_INTERVAL_MINUTES", 15),
        inbox_confidence_threshold=float(values.get("INBOX_CONFIDENCE_THRESHOLD") or 0.6),
        staff_idle_minutes=_int(values, "STAFF_IDLE_MINUTES", 20),
        staff_session_hours=_int(values, "STAFF_SESSION_HOURS", 8),
        staff_lockout_attempts=_int(values, "STAFF_LOCKOUT_ATTEMPTS", 5),
        staff_lockout_minutes=_int(values, "STAFF_LOCKOUT_MINUTES", 15),
        exit_url=values.get("EXIT_URL") or "https://www.bbc.co.uk/weather",
        max_message_chars=_int(values, "MAX_MESSAGE_CHARS", 2000),
        log_level=(values.get("LOG_LEVEL") or "INFO").upper(),
        tracker_store_url=values.get("TRACKER_STORE_URL", ""),
        lock_store_url=values.get("LOCK_STORE_URL", ""),
        handoff_database_url=values.get("HANDOFF_DATABASE_URL", ""),
        inbox_database_url=values.get("INBOX_DATABASE_URL", ""),
        sanic_workers=_int(values, "SANIC_WORKERS", 1),
        advice_line=AdviceLine(
            name=values.get("ADVICE_LINE_NAME") or "Liberty Advice and Information",
            phone=values.get("ADVICE_LINE_PHONE", ""),
            web=values.get("ADVICE_LINE_WEB", ""),
            hours=values.get("ADVICE_LINE_HOURS", ""),
        ),
        widget_allowed_origins=tuple(
            (values.get("WIDGET_ALLOWED_ORIGINS") or "").replace(",", " ").split()
        ),
        project_root=root,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
