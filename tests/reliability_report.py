"""Collects what the reliability tests tried and writes `docs/RELIABILITY.md`.

Each test module (faults, load, hostile input, properties, fuzz) records rows with `record()`
once its assertions have passed; a module-scoped fixture calls `flush(section)` at the end
of the module. Rows of each section are kept in `build/reliability/<section>.json`, so
running one test file refreshes its own section and keeps the others from the last run.

Also home of the `model` fixture shared by the integration modules: the model from
SAFE_REPORT_TEST_MODEL when set (handy while developing), else conftest's `trained_model`
(the model for the current training data, trained if needed).
"""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

REPORT = PROJECT_ROOT / "docs" / "RELIABILITY.md"
ROWS_DIR = PROJECT_ROOT / "build" / "reliability"

SECTIONS = {
    "faults": "Faults (process kills, failing stores, corrupt files)",
    "load": "Load",
    "hostile": "Hostile input",
    "properties": "Properties (hypothesis, unit level)",
    "fuzz": "API fuzzing (schemathesis, from the web app's OpenAPI description)",
}


@dataclass
class Row:
    case: str
    tried: str
    count: int | str
    result: str


_rows: dict[str, list[Row]] = {}


def record(section: str, case: str, tried: str, count: int | str, result: str) -> None:
    """Add one line to `section` of the report (call it after the test's assertions)."""
    _rows.setdefault(section, []).append(Row(case, tried, count, result))


def flush(section: str) -> None:
    """Save the rows of `section` and rewrite docs/RELIABILITY.md from every section."""
    rows = _rows.pop(section, [])
    if not rows:
        return
    ROWS_DIR.mkdir(parents=True, exist_ok=True)
    (ROWS_DIR / f"{section}.json").write_text(
        json.dumps({"written": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "rows": [asdict(r) for r in rows]}, indent=1)
    )
    write_report()


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_report() -> Path:
    lines = [
        "# Reliability: faults, load and hostile input",
        "",
        "Written by the test run (`tests/test_reliability.py`, `tests/test_hostile_input.py`,",
        "`tests/test_properties.py`, `tests/test_fuzz.py`, helper `tests/reliability_report.py`);",
        "do not edit by hand.",
        "Each row is added only after the test's assertions passed: a missing row means the",
        "test failed or was not run. Timings are from a shared 2-core machine under other",
        "load, so they are indicative only; the tests assert correctness, never time.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
    ]
    for section, title in SECTIONS.items():
        path = ROWS_DIR / f"{section}.json"
        if not path.exists():
            lines += [f"## {title}", "", "Not run yet.", ""]
            continue
        data = json.loads(path.read_text())
        lines += [
            f"## {title}",
            "",
            f"Last run: {data['written']}.",
            "",
            "| Case | What was tried | How many | Result |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(r['case'])} | {_cell(r['tried'])} | {_cell(r['count'])} | {_cell(r['result'])} |"
            for r in data["rows"]
        ]
        lines.append("")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines))
    return REPORT


def section_fixture(section: str):
    """A module-scoped autouse fixture that flushes `section` when the module is done."""

    @pytest.fixture(scope="module", autouse=True)
    def _report():
        yield
        flush(section)

    return _report


@pytest.fixture(scope="session")
def model(request) -> Path:
    override = os.environ.get("SAFE_REPORT_TEST_MODEL")
    if override:
        return Path(override)
    return request.getfixturevalue("trained_model")


@contextmanager
def session_stack_or_own(request, tmp_path_factory, model: Path, knowledge_db: Path, name: str):
    """The session stack (already running in `make test`), or a stack of our own when
    SAFE_REPORT_TEST_MODEL picks another model (handy while developing one test module)."""
    if not os.environ.get("SAFE_REPORT_TEST_MODEL"):
        yield request.getfixturevalue("stack")
        return
    from conftest import make_stack

    running = make_stack(tmp_path_factory.mktemp(name), model, knowledge_db)
    running.start()
    try:
        yield running
    finally:
        running.stop_all()
