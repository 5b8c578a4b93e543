"""Shared fixtures: isolated settings, the trained model, and the real running stack.

Tests marked `services` get a throwaway PostgreSQL cluster from Debian's packages on
loopback (`postgres`: a fresh database per test), and the store tests run on both SQLite and
PostgreSQL (`store_url`).

Integration tests start the real servers (Rasa with the REST channel, the action server,
the web app) on free ports against a model trained once per test session, with their own
DATA_DIR under pytest's tmp directory.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bot.settings import PROJECT_ROOT, Settings, load_settings

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with a private DATA_DIR, also seen by `get_settings()`."""
    from bot import settings as settings_module

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    settings_module.get_settings.cache_clear()
    yield settings_module.get_settings()
    settings_module.get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The model for the current training data (trained once if missing)."""
    from bot.training import models_for_current_data, train

    settings = load_settings()
    models = models_for_current_data(settings)
    return models[-1] if models else train(settings)


@pytest.fixture(scope="session")
def knowledge_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real knowledge base, built from knowledge/ into a temporary file."""
    from bot.knowledge import build_knowledge_base

    path = tmp_path_factory.mktemp("kb") / "knowledge.db"
    return build_knowledge_base(PROJECT_ROOT / "knowledge", path)


@dataclass
class RunningStack:
    settings: Settings
    env: dict[str, str]
    model: Path
    processes: dict[str, subprocess.Popen]
    log_dir: Path

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}/webhooks/rest/webhook"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def say(self, sender: str, message: str, timeout: float = 60) -> list[dict]:
        reply = requests.post(
            self.rest_url, json={"sender": sender, "message": message}, timeout=timeout
        )
        reply.raise_for_status()
        return reply.json()

    def start(self, *names: str) -> None:
        from bot.stack import stack_commands, write_endpoints

        endpoints = write_endpoints(self.settings, self.log_dir / "endpoints.yml")
        commands = {c.name: c for c in stack_commands(self.settings, self.model, endpoints)}
        for name in names or commands:
            log = open(self.log_dir / f"{name}.log", "ab")
            self.processes[name] = subprocess.Popen(
                commands[name].argv, cwd=PROJECT_ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.wait_ready(*(names or commands))

    def wait_ready(self, *names: str, timeout: float = 180) -> None:
        urls = {
            "rasa": f"http://127.0.0.1:{self.settings.rasa_port}/webhooks/rest/",
            "actions": f"http://127.0.0.1:{self.settings.action_port}/health",
            "web": f"{self.web_url}/healthz",
        }
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: see {self.log_dir / (name + '.log')}")
                try:
                    if requests.get(urls[name], timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not start in {timeout}s")
                time.sleep(0.5)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process and process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_dir.glob("*.log"))


def make_stack(tmp: Path, model: Path, knowledge: Path | None = None) -> RunningStack:
    from bot.stack import stack_environment

    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if knowledge is not None:
        (data_dir / "knowledge.db").write_bytes(knowledge.read_bytes())
    overrides = {
        "DATA_DIR": str(data_dir),
        "RASA_PORT": str(free_port()),
        "ACTION_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        "SAFE_REPORT_ENCRYPTION_KEY": "0cOqbXXL7Ij1yXyV8tOJQRvF6h1v3t9Z2w7mZtJ6bH8=",
        "STAFF_SESSION_SECRET": "test-session-secret-not-for-production",
    }
    settings = load_settings(overrides=overrides)
    env = stack_environment(settings)
    env.update(overrides)
    log_dir = tmp / "logs"
    log_dir.mkdir(exist_ok=True)
    return RunningStack(settings, env, model, {}, log_dir)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, trained_model, knowledge_db) -> Iterator[RunningStack]:
    """One running stack shared by the integration tests of a session."""
    running = make_stack(tmp_path_factory.mktemp("stack"), trained_model, knowledge_db)
    running.start()
    yield running
    running.stop_all()


# --- PostgreSQL from the distribution's packages, on loopback -------------------------------


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL cluster for the session, on 127.0.0.1 only, with trust authentication
    for the superuser `postgres`; yields postgresql://postgres@127.0.0.1:PORT."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: "
                    "apt-get install postgresql")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser to drop to the postgres user")
    # Not under pytest's tmp dir: as root that is 0700, and the postgres user could not enter.
    base = Path(tempfile.mkdtemp(prefix="safe-report-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    # Small WAL segments: the store tests read the WAL to check what reached the disk.
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-sync", "--wal-segsize=1"]),
        check=True, capture_output=True,
    )
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
               " -c min_wal_size=4MB -c max_wal_size=16MB")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "pg.log"),
                      "-w", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _postgres_admin(server_url: str, sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"{server_url}/postgres")
    connection.autocommit = True
    try:
        connection.cursor().execute(sql)
    finally:
        connection.close()


@pytest.fixture
def postgres(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL: its URL (dropped afterwards)."""
    name = f"safe_report_{secrets.token_hex(4)}"
    _postgres_admin(postgres_server, f"CREATE DATABASE {name} STRATEGY FILE_COPY")
    yield f"{postgres_server}/{name}"
    _postgres_admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Run a store test on both databases: "" (the default SQLite files under DATA_DIR) or the
    URL of a fresh PostgreSQL database, for HANDOFF_DATABASE_URL / INBOX_DATABASE_URL."""
    return request.getfixturevalue("postgres") if request.param == "postgresql" else ""


def database_bytes(store) -> bytes:
    """Everything a store's database has on disk. SQLite: the file, its WAL and shared
    memory. PostgreSQL (after a CHECKPOINT, so the pages are written): the database's own
    directory and the whole WAL of the cluster."""
    if store.dialect == "sqlite":
        path = store.path
        return b"".join(
            p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            if p.exists()
        )
    import sqlalchemy as sa

    engine = sa.create_engine(store.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CHECKPOINT")
            data_dir = Path(connection.exec_driver_sql("SHOW data_directory").scalar())
            oid = connection.exec_driver_sql(
                "SELECT oid FROM pg_database WHERE datname = current_database()").scalar()
    finally:
        engine.dispose()
    files = [*(data_dir / "base" / str(oid)).iterdir(), *(data_dir / "pg_wal").iterdir()]
    return b"".join(p.read_bytes() for p in files if p.is_file())


def table_columns(store, table: str) -> set[str]:
    """The column names of a table of a store, on either database."""
    if store.dialect == "sqlite":
        return {row["name"] for row in store.database.query(f"PRAGMA table_info({table})")}
    return {row["column_name"] for row in store.database.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,))}
