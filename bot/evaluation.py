"""`make evaluate`: test the trained model on data it never saw, and enforce the thresholds.

1. `rasa test nlu` on tests/nlu/ (the held-out split) -> results/nlu/
   fails if intent macro-F1 < 0.90 or emergency recall < 1.0.
2. `rasa test core --e2e` on tests/stories/ with --fail-on-prediction-errors -> results/core/
Prints a short summary table either way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.settings import get_settings
from bot.training import newest_model, rasa_environment, train

MIN_MACRO_F1 = 0.90
MIN_EMERGENCY_RECALL = 1.0


def run_rasa(args: list[str], root: Path) -> int:
    return subprocess.run(
        [sys.executable, "-m", "rasa", *args], cwd=root, env=rasa_environment()
    ).returncode


def nlu_summary(report_path: Path) -> tuple[dict, list[str]]:
    """The intent report's key figures and the threshold failures."""
    report = json.loads(report_path.read_text())
    macro_f1 = report["macro avg"]["f1-score"]
    emergency = report.get("emergency", {})
    failures = []
    if macro_f1 < MIN_MACRO_F1:
        failures.append(f"intent macro-F1 {macro_f1:.3f} < {MIN_MACRO_F1}")
    if emergency.get("recall", 0.0) < MIN_EMERGENCY_RECALL:
        failures.append(f"emergency recall {emergency.get('recall', 0.0):.3f} < {MIN_EMERGENCY_RECALL}")
    return report, failures


def print_nlu_table(report: dict) -> None:
    intents = sorted(k for k in report if k not in ("accuracy", "macro avg", "weighted avg", "micro avg"))
    print(f"{'intent':32} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for name in intents:
        row = report[name]
        print(f"{name:32} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1-score']:6.3f} {row['support']:8}")
    macro = report["macro avg"]
    print(f"{'macro avg':32} {macro['precision']:9.3f} {macro['recall']:7.3f} {macro['f1-score']:6.3f}")
    print(f"{'accuracy':32} {report['accuracy']:.3f}")


def main() -> int:
    settings = get_settings()
    root = settings.project_root
    model = train(settings)  # no-op when a model for the current data exists
    model = model if model.exists() else newest_model(settings)
    results = root / "results"
    failures: list[str] = []

    code = run_rasa(
        ["test", "nlu", "--model", str(model), "--nlu", "tests/nlu", "--out", str(results / "nlu")],
        root,
    )
    report_path = results / "nlu" / "intent_report.json"
    if code != 0 or not report_path.exists():
        failures.append("rasa test nlu did not produce an intent report")
    else:
        report, nlu_failures = nlu_summary(report_path)
        print("\n== NLU on the held-out split (tests/nlu) ==")
        print_nlu_table(report)
        failures += nlu_failures

    code = run_rasa(
        # --e2e: the stories' user text goes through NLU too, not only the intent labels.
        ["test", "core", "--model", str(model), "--stories", "tests/stories", "--e2e",
         "--out", str(results / "core"), "--fail-on-prediction-errors"],
        root,
    )
    story_report = results / "core" / "story_report.json"
    print("\n== Test stories (tests/stories) ==")
    if story_report.exists():
        stories = json.loads(story_report.read_text())
        conversation = stories.get("conversation_accuracy", {})
        print(
            f"conversations correct: {conversation.get('correct', '?')} of "
            f"{conversation.get('total', '?')}  (failed ones: results/core/failed_test_stories.yml)"
        )
    if code != 0:
        failures.append("test stories have prediction errors (see results/core/failed_test_stories.yml)")

    if failures:
        print("\nEVALUATION FAILED:\n- " + "\n- ".join(failures))
        return 1
    print("\nEvaluation passed: thresholds met, every test story predicted correctly.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
