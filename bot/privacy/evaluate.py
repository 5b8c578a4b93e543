"""Measure the personal-data detector on a YAML set of cases.

    python -m bot.privacy.evaluate [CASES_YML ...]

Cases file format: `cases: [{text, entities: [{type, value}]}]`, each value a substring of
its text (the first occurrence is used).

* Recall, per type: an expected entity is found when findings of the SAME type cover at
  least 80% of its characters.
* Precision, overall: a finding is correct when it overlaps an expected entity of the same
  type. Findings in cases with `entities: []` are all wrong.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.privacy.pii import PLACEHOLDERS, Finding, find_personal_data

COVERAGE = 0.8
DEFAULT_CASES = Path(__file__).resolve().parents[2] / "tests" / "data" / "pii_cases.yml"
REPORT_PATH = Path(__file__).resolve().parents[2] / "results" / "pii_report.txt"


@dataclass
class _Counts:
    expected: int = 0
    found: int = 0
    findings: int = 0
    correct_findings: int = 0
    misses: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)


def load_cases(path: Path) -> list[dict]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return list(data.get("cases") or [])


def _expected_spans(case: dict) -> list[tuple[str, int, int, str]]:
    text = case["text"]
    spans, taken = [], []
    for entity in case.get("entities") or []:
        value = str(entity["value"])
        # Repeated values ("Amina ... Amina"): take the next unused occurrence.
        start = text.find(value)
        while start != -1 and (start, entity["type"]) in taken:
            start = text.find(value, start + 1)
        if start == -1:
            raise ValueError(f"{value!r} is not in {text!r}")
        taken.append((start, entity["type"]))
        spans.append((entity["type"], start, start + len(value), value))
    return spans


def _covered(start: int, end: int, findings: list[Finding]) -> float:
    chars = set()
    for f in findings:
        chars.update(range(max(start, f.start), min(end, f.end)))
    return len(chars) / max(1, end - start)


def evaluate(cases_path: Path | str = DEFAULT_CASES) -> dict:
    """{"per_type": {type: {expected, found, recall}}, "precision", "findings", ...}."""
    counts: dict[str, _Counts] = {t: _Counts() for t in PLACEHOLDERS}
    total_findings = correct_findings = 0
    cases = load_cases(Path(cases_path))
    for case in cases:
        text = str(case["text"])
        expected = _expected_spans(case)
        findings = find_personal_data(text)
        for type_, start, end, value in expected:
            c = counts.setdefault(type_, _Counts())
            c.expected += 1
            same = [f for f in findings if f.type == type_]
            if _covered(start, end, same) >= COVERAGE:
                c.found += 1
            else:
                got = [(f.type, f.text) for f in findings]
                c.misses.append(f"{value!r} in {text!r} -> {got}")
        for f in findings:
            total_findings += 1
            c = counts.setdefault(f.type, _Counts())
            c.findings += 1
            if any(t == f.type and f.start < e and s < f.end for t, s, e, _ in expected):
                correct_findings += 1
                c.correct_findings += 1
            else:
                c.false_positives.append(f"{f.text!r} in {text!r}")
    per_type = {
        t: {
            "expected": c.expected,
            "found": c.found,
            "recall": (c.found / c.expected) if c.expected else None,
            "findings": c.findings,
            "correct_findings": c.correct_findings,
            "precision": (c.correct_findings / c.findings) if c.findings else None,
            "misses": c.misses,
            "false_positives": c.false_positives,
        }
        for t, c in counts.items()
    }
    return {
        "cases": len(cases),
        "per_type": per_type,
        "findings": total_findings,
        "correct_findings": correct_findings,
        "precision": (correct_findings / total_findings) if total_findings else 1.0,
    }


def format_table(result: dict, title: str = "") -> str:
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{'type':<16} {'expected':>8} {'found':>6} {'recall':>7} {'findings':>9} "
                 f"{'correct':>8} {'precision':>9}")
    for type_, row in result["per_type"].items():
        if not row["expected"] and not row["findings"]:
            continue
        recall = f"{row['recall']:.3f}" if row["recall"] is not None else "-"
        precision = f"{row['precision']:.3f}" if row["precision"] is not None else "-"
        lines.append(f"{type_:<16} {row['expected']:>8} {row['found']:>6} {recall:>7} "
                     f"{row['findings']:>9} {row['correct_findings']:>8} {precision:>9}")
    lines.append(f"overall precision {result['precision']:.3f} "
                 f"({result['correct_findings']}/{result['findings']} findings), "
                 f"{result['cases']} cases")
    return "\n".join(lines)


def format_errors(result: dict) -> str:
    lines = []
    for type_, row in result["per_type"].items():
        for miss in row["misses"]:
            lines.append(f"MISS {type_}: {miss}")
        for fp in row["false_positives"]:
            lines.append(f"FALSE {type_}: {fp}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)] or [DEFAULT_CASES]
    for path in paths:
        result = evaluate(path)
        print(format_table(result, title=str(path)))
        errors = format_errors(result)
        if errors:
            print(errors)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
