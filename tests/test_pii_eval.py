"""Scores the personal-data detector on the independent test set tests/data/pii_cases.yml.

Recall per type >= 0.95 and overall precision >= 0.90. The table is printed and also written
to results/pii_report.txt, so it is there whether or not pytest captures output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.privacy.evaluate import REPORT_PATH, evaluate, format_errors, format_table

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "data" / "pii_cases.yml"
DEV = ROOT / "tests" / "data" / "pii_dev.yml"

MIN_RECALL = 0.95
MIN_PRECISION = 0.90


@pytest.fixture(scope="module")
def results() -> dict:
    if not CASES.exists():
        pytest.skip("tests/data/pii_cases.yml not written yet")
    test = evaluate(CASES)
    dev = evaluate(DEV) if DEV.exists() else None
    report = [format_table(test, title=f"Independent test set: {CASES.relative_to(ROOT)}")]
    report.append(format_errors(test))
    if dev is not None:
        report.append("")
        report.append(format_table(dev, title=f"Development set: {DEV.relative_to(ROOT)}"))
        report.append(format_errors(dev))
    text = "\n".join(part for part in report if part is not None) + "\n"
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(text, encoding="utf-8")
    print("\n" + text)
    return test


def test_recall_per_type(results):
    low = {
        type_: row["recall"]
        for type_, row in results["per_type"].items()
        if row["expected"] and row["recall"] < MIN_RECALL
    }
    assert not low, f"recall below {MIN_RECALL}: {low} (see {REPORT_PATH})"


def test_precision_overall(results):
    assert results["precision"] >= MIN_PRECISION, f"see {REPORT_PATH}"
