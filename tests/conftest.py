"""Shared fixtures: isolated settings, the trained model, and the real running stack.

Integration tests start the real servers (Rasa with the REST channel, the action server,
the web app) on free ports against a model trained once per test session, with their own
DATA_DIR under pytest's tmp directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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
