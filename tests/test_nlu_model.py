"""The trained NLU model with the safety net, in process: danger right now is always caught.

Runs every safety-net case set through the whole NLU pipeline of the trained model (spaCy
pipeline, DIET, FallbackClassifier, EmergencySafetyNet) and prints the figures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def parse(trained_model):
    from rasa.core.agent import Agent

    agent = Agent.load(str(trained_model))

    def intent_of(text: str) -> str:
        return asyncio.run(agent.parse_message(text))["intent"]["name"]

    return intent_of


def rates(parse, name: str) -> tuple[float, float, list[str]]:
    cases = yaml.safe_load((DATA / name).read_text())
    missed = [t for t in cases["danger"] if parse(t) != "emergency"]
    alarms = [t for t in cases["near_miss"] if parse(t) == "emergency"]
    recall = 1 - len(missed) / len(cases["danger"])
    false_alarms = len(alarms) / len(cases["near_miss"])
    print(f"\n{name}: emergency recall {recall:.3f}, false alarms {false_alarms:.3f}")
    for text in missed:
        print(f"  missed: {text}")
    return recall, false_alarms, missed


@pytest.mark.parametrize("name", ["safety_net_cases.yml", "safety_net_holdout.yml"])
def test_every_danger_case_is_an_emergency(parse, name):
    recall, _false_alarms, missed = rates(parse, name)
    assert missed == []


def test_blind_set_with_the_model(parse):
    recall, false_alarms, _missed = rates(parse, "safety_net_blind.yml")
    assert recall >= 0.9
    assert false_alarms <= 0.25
