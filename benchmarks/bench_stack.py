"""safe-report against a stock `rasa init` assistant, side by side on this machine.

    .venv/bin/python -m benchmarks.bench_stack [--users 20] [--rounds 5] [--repeat 3] [--skip-train]
                                              [--skip-workers] [--skip-others] [--stock-dir DIR]

In one go, one server measured at a time (the others sit idle, so they never compete for
the CPU), in `--repeat` interleaved rounds (stock, safe-report, stock, safe-report, ...;
figures are medians, ratios are per round) because this VM's speed drifts over minutes:
1. the stock assistant (`rasa init --no-prompt`, trained now by the same Rasa, REST channel,
   in-memory tracker store, no action server), kept up for the whole run;
2. the full safe-report stack (Rasa + action server + web app, SQLite tracker store with
   redaction, its spaCy pipeline and safety net, the knowledge base), measured on the path a
   browser takes (POST /api/chat on the web app, which proxies to Rasa) and on Rasa's
   REST webhook directly;
3. safe-report with SANIC_WORKERS=2 (SQLite lock store, bot/lock_store.py);
4. the time of a full training, into a temporary directory (models/ is not touched);
5. benchmarks/bench_search.py and bench_staff_queue.py, when they exist.

Every server gets the same client (benchmarks/client.py) and the same 14-message triage
conversation: single-user latency over `--rounds` conversations, then `--users`
concurrent conversations for throughput and p95. Peak RSS is the sum over the process
tree of the safe-report stack, sampled every 100 ms while it serves. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks import client, stock_bot

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"p50_ratio": 1.5, "throughput_ratio": 1.0, "rss_mb": 2048, "two_workers": 1.7}
TEST_KEY = "0cOqbXXL7Ij1yXyV8tOJQRvF6h1v3t9Z2w7mZtJ6bH8="  # a throwaway key, benchmark only


def pick_model() -> Path:
    """The model for the current data; else the newest one; else train one."""
    from bot.settings import load_settings
    from bot.training import models_for_current_data, newest_model, train

    settings = load_settings()
    models = models_for_current_data(settings)
    if models:
        return models[-1]
    newest = newest_model(settings)
    if newest:
        print(f"(no model for the current training data; using the newest: {newest.name})")
        return newest
    return train(settings)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc; no psutil needed)."""
    children, tree, todo = _children_map(), [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """Peak of the summed RSS over some process trees, sampled in a thread."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids, self.interval = pids, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        return sum(rss_bytes(p) for pid in self.pids for p in process_tree(pid))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


@dataclass
class SafeReportStack:
    """The three servers of safe-report on free ports with a private DATA_DIR."""

    workdir: Path
    model: Path
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> SafeReportStack:
        from bot.knowledge import build_knowledge_base
        from bot.settings import load_settings
        from bot.stack import stack_commands, stack_environment, write_endpoints

        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        build_knowledge_base(ROOT / "knowledge", data_dir / "knowledge.db")
        overrides = {
            "DATA_DIR": str(data_dir),
            "RASA_PORT": str(stock_bot.free_port()),
            "ACTION_PORT": str(stock_bot.free_port()),
            "WEB_PORT": str(stock_bot.free_port()),
            "SANIC_WORKERS": str(self.workers),
            "SAFE_REPORT_ENCRYPTION_KEY": TEST_KEY,
            "STAFF_SESSION_SECRET": "benchmark-session-secret",
            "RASA_API_TOKEN": "",
            **self.extra_env,
        }
        self.settings = load_settings(overrides=overrides)
        env = stack_environment(self.settings)
        env.update(overrides)
        endpoints = write_endpoints(self.settings, self.workdir / "endpoints.yml")
        for command in stack_commands(self.settings, self.model, endpoints):
            log = open(self.workdir / f"{command.name}.log", "ab")
            self.processes[command.name] = subprocess.Popen(
                command.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}/webhooks/rest/webhook"

    @property
    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}/api/chat"

    def _wait_ready(self, timeout: float = 240) -> None:
        urls = {
            "rasa": f"http://127.0.0.1:{self.settings.rasa_port}/webhooks/rest/",
            "actions": f"http://127.0.0.1:{self.settings.action_port}/health",
            "web": f"http://127.0.0.1:{self.settings.web_port}/healthz",
        }
        deadline = time.monotonic() + timeout
        for name, url in urls.items():
            while True:
                if self.processes[name].poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} exited: see {self.workdir / (name + '.log')}")
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{name} did not start in {timeout}s")
                time.sleep(0.5)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def warm(url: str, users: int) -> None:
    """Steady state, for every server alike: one conversation, then a concurrent round, so
    that each Sanic worker has loaded and traced its models before anything is timed."""
    client.warm_up(url)
    client.concurrent_users(url, users=users)


def measure(url: str, users: int, rounds: int) -> dict[str, client.Result]:
    return {
        "single": client.single_user(url, rounds=rounds),
        "concurrent": client.concurrent_users(url, users=users),
    }


def interleaved(servers: dict[str, str], users: int, rounds: int, repeat: int
                ) -> dict[str, list[dict[str, client.Result]]]:
    """Measure every server once per round, round after round (A B C, A B C, ...), so that
    each ratio compares runs made a few seconds apart: this VM's speed drifts by about ±10%
    over minutes, more than some of the differences being measured."""
    for url in servers.values():
        warm(url, users)
    runs: dict[str, list[dict[str, client.Result]]] = {label: [] for label in servers}
    for _ in range(repeat):
        for label, url in servers.items():
            runs[label].append(measure(url, users, rounds))
    return runs


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(runs: dict[str, list[dict[str, client.Result]]], label: str, base: str,
           figure) -> list[float]:
    """Per-round ratio of `figure(result)` between two servers."""
    return [figure(a) / figure(b) for a, b in zip(runs[label], runs[base], strict=True)]


def row(label: str, runs: list[dict[str, client.Result]]) -> str:
    """One line: the median of each figure over the rounds; errors and empties summed."""
    def med(figure) -> float:
        return median([figure(run) for run in runs])

    errors = sum(r.errors for run in runs for r in run.values())
    empty = sum(r.empty for run in runs for r in run.values())
    return (
        f"{label:<34} {med(lambda r: r['single'].p(0.5)):8.1f} "
        f"{med(lambda r: r['single'].p(0.95)):8.1f} │ "
        f"{med(lambda r: r['concurrent'].throughput):9.1f} "
        f"{med(lambda r: r['concurrent'].p(0.5)):8.1f} "
        f"{med(lambda r: r['concurrent'].p(0.95)):8.1f} {errors:6d} {empty:6d}"
    )


HEADER = (
    f"{'':<34} {'single-user (ms)':>17} │ {'concurrent users':>26}\n"
    f"{'server':<34} {'p50':>8} {'p95':>8} │ {'msg/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
    f"{'errors':>6} {'empty':>6}"
)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def time_training() -> float:
    """Seconds of a full `rasa train` of safe-report into a temporary directory."""
    from bot.settings import load_settings
    from bot.training import build_nlp, rasa_environment

    build_nlp(load_settings())  # the spaCy pipeline is a prerequisite, not part of training
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        command = [
            sys.executable, "-m", "rasa", "train", "--force",
            "--data", "bot/data", "--config", "config.yml", "--domain", "domain.yml",
            "--out", out, "--fixed-model-name", "bench",
        ]
        started = time.perf_counter()
        subprocess.run(
            command, cwd=ROOT, env=rasa_environment(), check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def run_other(script: str) -> str:
    path = ROOT / "benchmarks" / f"{script}.py"
    if not path.exists():
        return f"({script}.py not present)\n"
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{script}"], cwd=ROOT, capture_output=True, text=True
    )
    tail = "" if done.returncode == 0 else f"\n(exit {done.returncode}) {done.stderr[-2000:]}"
    return done.stdout + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="single-user conversations")
    parser.add_argument("--stock-dir", type=Path, help="reuse (or create) the stock bot here")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved rounds per server; figures are medians")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-others", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

    memory = Path("/proc/meminfo").read_text().split()[1]  # MemTotal in kB
    print(f"machine: {os.cpu_count()} CPU, {int(memory) / 2**20:.1f} GiB RAM; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"conversation: {len(client.TRIAGE_CONVERSATION)} messages; single-user: "
          f"{args.rounds} conversations in a row; load: {args.users} concurrent users")
    model = pick_model()
    print(f"safe-report model: {model.name}")

    stock_label, web_label, direct_label, two_label = (
        "stock rasa init (REST)", "safe-report via web /api/chat",
        "safe-report Rasa REST direct", "safe-report 2 workers via /api/chat",
    )
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        stock_dir = stock_bot.create(args.stock_dir or tmp_path / "stock")
        print(f"stock assistant created and trained in {time.perf_counter() - started:.0f} s")
        # The stock server stays up (idle between its turns) and is measured in the same
        # rounds as each safe-report shape.
        stock = stock_bot.start(stock_dir)
        try:
            stack = SafeReportStack(tmp_path / "safe1", model).start()
            try:
                with RssSampler(stack.pids()) as rss:
                    one = interleaved(
                        {stock_label: stock.rest_url, web_label: stack.chat_url,
                         direct_label: stack.rest_url},
                        args.users, args.rounds, args.repeat,
                    )
            finally:
                stack.stop()
            two = None
            if not args.skip_workers:
                stack = SafeReportStack(tmp_path / "safe2", model, workers=2).start()
                try:
                    with RssSampler(stack.pids()) as rss2:
                        two = interleaved(
                            {stock_label: stock.rest_url, two_label: stack.chat_url},
                            args.users, args.rounds, args.repeat,
                        )
                finally:
                    stack.stop()
        finally:
            stock.stop()

    print()
    print(f"Each figure is the median over {args.repeat} interleaved rounds.")
    print(HEADER)
    for label, runs in one.items():
        print(row(label, runs))
    if two is not None:
        print(row(two_label, two[two_label]))

    single_p50 = lambda r: r["single"].p(0.5)  # noqa: E731
    single_p95 = lambda r: r["single"].p(0.95)  # noqa: E731
    throughput = lambda r: r["concurrent"].throughput  # noqa: E731
    load_p95 = lambda r: r["concurrent"].p(0.95)  # noqa: E731

    def spread(values: list[float]) -> str:
        return f"{median(values):5.2f}×  (rounds: {', '.join(f'{v:.2f}' for v in values)})"

    p50_ratios = ratios(one, web_label, stock_label, single_p50)
    tp_ratios = ratios(one, web_label, stock_label, throughput)
    errors = sum(r.errors for runs in (one, two or {}) for rs in runs.values()
                 for run in rs for r in run.values())
    print()
    print("ratios, safe-report (full path, /api/chat) / stock, per round:")
    print(f"  single-user p50  {spread(p50_ratios)}   goal ≤ {GOALS['p50_ratio']}×   "
          f"{verdict(median(p50_ratios) <= GOALS['p50_ratio'])}")
    print(f"  single-user p95  {spread(ratios(one, web_label, stock_label, single_p95))}")
    print(f"  throughput       {spread(tp_ratios)}   goal ≥ {GOALS['throughput_ratio']}×   "
          f"{verdict(median(tp_ratios) >= GOALS['throughput_ratio'])}")
    print(f"  p95 under load   {spread(ratios(one, web_label, stock_label, load_p95))}")
    print("ratios, safe-report (Rasa REST direct) / stock: "
          f"p50 {spread(ratios(one, direct_label, stock_label, single_p50))}; "
          f"throughput {spread(ratios(one, direct_label, stock_label, throughput))}")
    print(f"errors over every run: {errors}   goal 0   {verdict(errors == 0)}")
    print(f"peak RSS of the safe-report stack (1 worker, all processes): "
          f"{rss.peak / 2**20:.0f} MiB   goal ≤ {GOALS['rss_mb']} MiB   "
          f"{verdict(rss.peak / 2**20 <= GOALS['rss_mb'])}")
    if two is not None:
        two_ratios = ratios(two, two_label, stock_label, throughput)
        tput = median([throughput(r) for r in two[two_label]])
        own = tput / median([throughput(r) for r in one[web_label]])
        print(f"two workers (SANIC_WORKERS=2, SQLite lock store): {tput:.1f} msg/s; "
              f"/ stock {spread(two_ratios)}   goal ≥ {GOALS['two_workers']}×   "
              f"{verdict(median(two_ratios) >= GOALS['two_workers'])}; "
              f"{own:.2f}× safe-report with 1 worker; peak RSS {rss2.peak / 2**20:.0f} MiB")

    if not args.skip_train:
        print()
        print(f"full training (rasa train --force, safe-report data): {time_training():.0f} s")
    if not args.skip_others:
        for script in ("bench_search", "bench_staff_queue"):
            print()
            print(f"── {script} " + "─" * 40)
            print(run_other(script), end="")


if __name__ == "__main__":
    main()
