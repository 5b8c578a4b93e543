"""The project's own checks of the training data and the domain (besides `rasa data validate`)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import yaml

from bot.nlp.pipeline import load_situation_vocabulary, synonyms_yaml
from bot.settings import PROJECT_ROOT

NLU_DIR = PROJECT_ROOT / "bot" / "data" / "nlu"
TEST_NLU = PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml"
DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())

# Intents named by the triage issue need this many hand-written training examples.
SITUATION_INTENTS = {
    "emergency", "domestic_abuse", "report_crime_victim", "witness_crime",
    "fear_immigration_enforcement", "help_someone_else", "request_human", "out_of_scope",
}
MIN_SITUATION_EXAMPLES = 40
MIN_OTHER_EXAMPLES = 20


def examples(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for block in yaml.safe_load(path.read_text()).get("nlu", []):
        if "intent" not in block:
            continue
        raw = block["examples"]
        items = [e["text"] for e in raw] if isinstance(raw, list) else [
            line[2:].strip() for line in raw.splitlines() if line.startswith("- ")
        ]
        found[block["intent"]].extend(items)
    return found


def training_examples() -> dict[str, list[str]]:
    merged: dict[str, list[str]] = defaultdict(list)
    for path in sorted(NLU_DIR.glob("*.yml")):
        for intent, items in examples(path).items():
            merged[intent].extend(items)
    return merged


def norm(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text.lower()).strip()


def test_every_intent_has_enough_examples():
    counts = {intent: len(items) for intent, items in training_examples().items()}
    for intent in DOMAIN["intents"]:
        needed = MIN_SITUATION_EXAMPLES if intent in SITUATION_INTENTS else MIN_OTHER_EXAMPLES
        assert counts.get(intent, 0) >= needed, f"{intent}: {counts.get(intent, 0)} < {needed}"


def test_no_example_appears_under_two_intents():
    seen: dict[str, str] = {}
    for intent, items in training_examples().items():
        for item in items:
            other = seen.setdefault(norm(item), intent)
            assert other == intent, f"{item!r} is under {other} and {intent}"


def test_test_split_is_never_trained_on():
    trained = {norm(t) for items in training_examples().values() for t in items}
    for items in examples(TEST_NLU).values():
        for item in items:
            assert norm(item) not in trained, f"test example {item!r} is in the training data"


def test_every_response_has_at_least_two_variations():
    for name, variations in DOMAIN["responses"].items():
        assert len(variations) >= 2, f"{name} has {len(variations)} variation(s)"


def test_synonyms_file_is_generated_from_the_patterns():
    current = (NLU_DIR / "synonyms.yml").read_text()
    assert current == synonyms_yaml(load_situation_vocabulary()), "run `safe-report nlp build`"


def test_responses_never_ask_for_name_address_birth_date_or_status():
    forbidden = re.compile(
        r"what is your (name|address|date of birth|immigration status)|your (full name|home address)",
        re.I,
    )
    for name, variations in DOMAIN["responses"].items():
        for variation in variations:
            assert not forbidden.search(variation.get("text", "")), name
