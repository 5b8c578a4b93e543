"""Start the whole stack (Rasa server, action server, web app) and stop it as one.

Process supervision is honcho's: it starts each command, prefixes its output, and when one
process ends or Ctrl-C arrives it terminates the others, so no orphans are left.
"""

from __future__ import annotations

import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.fernet import Fernet

from bot.settings import Settings
from bot.training import rasa_environment


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]

    @property
    def shell(self) -> str:
        return " ".join(shlex.quote(part) for part in self.argv)


def ensure_secrets(root: Path) -> list[str]:
    """Fill empty secrets in .env (never in DATA_DIR). Returns the keys it wrote."""
    env_file = root / ".env"
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    present = {
        line.split("=", 1)[0].strip(): line.split("=", 1)[1].strip()
        for line in lines
        if "=" in line and not line.lstrip().startswith("#")
    }
    generated = {
        "SAFE_REPORT_ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
        "STAFF_SESSION_SECRET": lambda: secrets.token_urlsafe(48),
    }
    written = []
    for key, make in generated.items():
        if not present.get(key):
            lines = [line for line in lines if not line.startswith(f"{key}=")]
            lines.append(f"{key}={make()}")
            written.append(key)
    if written:
        env_file.write_text("\n".join(lines) + "\n")
        env_file.chmod(0o600)
    return written


def write_endpoints(settings: Settings, path: Path) -> Path:
    """The endpoints file for this run: action server port, stores from settings."""
    endpoints: dict = {
        # Send the domain only to the actions that ask for it (domain.yml `send_domain`):
        # less data leaves Rasa, and serialising the domain on every call was costly.
        "action_endpoint": {
            "url": f"http://127.0.0.1:{settings.action_port}/webhook",
            "enable_selective_domain": True,
        },
        "tracker_store": {"type": "bot.tracker_store.RedactingSQLTrackerStore"},
    }
    if settings.lock_store_url:
        from urllib.parse import urlparse

        url = urlparse(settings.lock_store_url)
        endpoints["lock_store"] = {
            "type": "redis",
            "url": url.hostname or "127.0.0.1",
            "port": url.port or 6379,
            "db": int((url.path or "/1").lstrip("/") or 1),
            "key_prefix": "safereport",
        }
        if url.password:
            endpoints["lock_store"]["password"] = url.password
    elif settings.sanic_workers > 1:
        # Several workers on one machine without Redis: ticket locks in a SQLite file
        # (bot/lock_store.py). Rasa refuses SANIC_WORKERS > 1 with its in-memory lock store.
        endpoints["lock_store"] = {
            "type": "bot.lock_store.SQLiteLockStore",
            "path": str(settings.data_dir / "locks.db"),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    return path


def stack_commands(settings: Settings, model: Path, endpoints: Path) -> list[Command]:
    python = sys.executable
    rasa = [
        python, "-m", "rasa", "run",
        "--model", str(model),
        "--endpoints", str(endpoints),
        "--credentials", str(settings.project_root / "credentials.yml"),
        "--interface", settings.bind_host,
        "--port", str(settings.rasa_port),
    ]
    if settings.rasa_api_token:
        rasa += ["--enable-api", "--auth-token", settings.rasa_api_token]
    actions = [python, "-m", "rasa_sdk", "--actions", "bot.actions", "--port", str(settings.action_port)]
    web = [
        python, "-m", "uvicorn", "bot.web.app:create_app", "--factory",
        "--host", settings.bind_host, "--port", str(settings.web_port),
        # Access logs would record visitors' IP addresses. No websockets: the app has none,
        # and uvicorn's websocket module fails to import beside the websockets Rasa pins.
        "--no-access-log", "--log-level", "warning", "--ws", "none",
    ]
    return [Command("rasa", rasa), Command("actions", actions), Command("web", web)]


def stack_environment(settings: Settings) -> dict[str, str]:
    env = rasa_environment()
    env["SANIC_HOST"] = "127.0.0.1"  # the action server only ever listens on loopback
    env["SANIC_REQUEST_MAX_SIZE"] = "1000000"
    env["DATA_DIR"] = str(settings.data_dir)
    if settings.sanic_workers > 1:
        env["SANIC_WORKERS"] = str(settings.sanic_workers)
    return env


def run_stack(settings: Settings, model: Path) -> int:
    """Run all three servers in the foreground until Ctrl-C or one of them stops."""
    from honcho.manager import Manager

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    endpoints = write_endpoints(settings, settings.project_root / "build" / "run" / "endpoints.yml")
    env = stack_environment(settings)
    manager = Manager()
    for command in stack_commands(settings, model, endpoints):
        manager.add_process(command.name, command.shell, env=env, cwd=str(settings.project_root))
    manager.loop()
    return manager.returncode or 0
