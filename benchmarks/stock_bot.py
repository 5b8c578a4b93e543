"""A stock `rasa init --no-prompt` assistant, trained and served by the same Rasa.

It is the yardstick for bench_stack: same machine, same Rasa 3.6, same REST channel
(Rasa's own `rest`), default endpoints (in-memory tracker and lock store, no action
server, since the stock assistant's actions.py is all commented out).

    .venv/bin/python -m benchmarks.stock_bot [DIR]     # create + train, print the model path
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SANIC_ACCESS_LOG": "False",
            "LOG_LEVEL_LIBRARIES": "ERROR",
            "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
        }
    )
    return env


def create(directory: Path | None = None) -> Path:
    """Create and train the stock assistant in `directory` (a new temp dir by default).

    Reuses a model already trained there. Returns the project directory.
    """
    directory = Path(directory or tempfile.mkdtemp(prefix="stock-rasa-"))
    if model_of(directory):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    # `rasa init --no-prompt` scaffolds the project and trains it (models/*.tar.gz).
    subprocess.run(
        [sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(directory)],
        cwd=directory, env=rasa_env(), check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    if not model_of(directory):
        raise RuntimeError(f"rasa init trained no model in {directory}")
    return directory


def model_of(directory: Path) -> Path | None:
    models = sorted((Path(directory) / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


@dataclass
class StockServer:
    directory: Path
    port: int
    process: subprocess.Popen

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def start(directory: Path, port: int | None = None, timeout: float = 180) -> StockServer:
    """Serve the stock assistant with the REST channel (credentials.yml of rasa init)."""
    port = port or free_port()
    log = open(Path(directory) / "rasa.log", "ab")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "rasa", "run",
            "--model", str(model_of(directory)),
            "--credentials", str(Path(directory) / "credentials.yml"),
            "--interface", "127.0.0.1", "--port", str(port),
        ],
        cwd=directory, env=rasa_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = StockServer(Path(directory), port, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"stock rasa exited: see {directory}/rasa.log")
        try:
            if requests.get(f"http://127.0.0.1:{port}/webhooks/rest/", timeout=2).ok:
                return server
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError("stock rasa did not start")
        time.sleep(0.5)


if __name__ == "__main__":
    project = create(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(model_of(project))
