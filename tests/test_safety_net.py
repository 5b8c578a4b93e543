"""The emergency safety net, without the trained model.

Three case sets, each written by hand for the project:
- safety_net_cases.yml: the development set the patterns were written against;
- safety_net_holdout.yml: written later without seeing the patterns; measured blind at
  52/80 danger found and 4/60 false alarms, then the patterns were generalised;
- safety_net_blind.yml: written last and never used to change a pattern. Measured on
  2026-11-25: the rules alone find 42/60 (0.70) with 4/40 false alarms; together with the
  trained classifier (tests/test_nlu_model.py) 56/60. Its figures are printed here, and the
  floor below catches a regression of the rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.nlp.safety_net import detect_danger, normalise

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict[str, list[str]]:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))


DEV = load("safety_net_cases.yml")
HOLDOUT = load("safety_net_holdout.yml")


def test_case_sets_are_big_enough():
    assert len(DEV["danger"]) >= 60 and len(DEV["near_miss"]) >= 30
    assert len(HOLDOUT["danger"]) >= 60 and len(HOLDOUT["near_miss"]) >= 30


@pytest.mark.parametrize("text", DEV["danger"] + HOLDOUT["danger"])
def test_danger_now_is_detected(text):
    assert detect_danger(text) is not None, normalise(text)


@pytest.mark.parametrize("text", DEV["near_miss"] + HOLDOUT["near_miss"])
def test_near_misses_are_not_danger(text):
    signal = detect_danger(text)
    assert signal is None, f"{normalise(text)!r} matched {signal}"


@pytest.mark.parametrize(
    "text",
    [
        "I was in danger last year",
        "what is 999 for",
        "can I call 999 if I have no visa?",
        "should i call the police now or wait?",
        "I'm safe now, he left",
        "",
        "   ",
        "/affirm",
    ],
)
def test_past_danger_and_questions_about_999_do_not_fire(text):
    assert detect_danger(text) is None


def test_blind_set_figures():
    blind = load("safety_net_blind.yml")
    found = sum(detect_danger(t) is not None for t in blind["danger"])
    false_alarms = sum(detect_danger(t) is not None for t in blind["near_miss"])
    recall = found / len(blind["danger"])
    false_alarm_rate = false_alarms / len(blind["near_miss"])
    print(f"\nsafety net, blind set: recall {recall:.3f} ({found}/{len(blind['danger'])}), "
          f"false alarms {false_alarm_rate:.3f} ({false_alarms}/{len(blind['near_miss'])})")
    # The classifier is the first line and the rules the net under it (see
    # tests/test_nlu_model.py for the two together); this floor keeps the rules from rotting.
    assert recall >= 0.65
    assert false_alarm_rate <= 0.15


def test_component_forces_emergency_over_the_classifier():
    from rasa.shared.nlu.training_data.message import Message

    from bot.nlp.safety_net import EmergencySafetyNet

    message = Message(data={"text": "hes outside with a knife"})
    message.set("intent", {"name": "greet", "confidence": 0.9}, add_to_output=True)
    message.set("intent_ranking", [{"name": "greet", "confidence": 0.9}], add_to_output=True)
    EmergencySafetyNet().process([message])
    assert message.get("intent") == {"name": "emergency", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "emergency"

    calm = Message(data={"text": "hello there"})
    calm.set("intent", {"name": "greet", "confidence": 0.9}, add_to_output=True)
    EmergencySafetyNet().process([calm])
    assert calm.get("intent")["name"] == "greet"


@pytest.mark.parametrize(
    "text",
    ["yes I'm safe right now", "i am safe for now", "safe.me@example.com",
     "weekdays after 10am", "07700 900123 is safe to use", "when he is at work, so 9 to 5"],
)
def test_classifier_false_alarms_are_overruled_when_clearly_not_danger(text):
    from rasa.shared.nlu.training_data.message import Message

    from bot.nlp.safety_net import EmergencySafetyNet

    message = Message(data={"text": text})
    message.set("intent", {"name": "emergency", "confidence": 0.9}, add_to_output=True)
    message.set("intent_ranking", [{"name": "emergency", "confidence": 0.9},
                                   {"name": "affirm", "confidence": 0.1}], add_to_output=True)
    EmergencySafetyNet().process([message])
    assert message.get("intent")["name"] == "affirm"


def test_danger_is_never_overruled():
    from rasa.shared.nlu.training_data.message import Message

    from bot.nlp.safety_net import EmergencySafetyNet

    message = Message(data={"text": "I'm not safe, he is outside with a knife, call 07700 900123"})
    message.set("intent", {"name": "emergency", "confidence": 0.9}, add_to_output=True)
    EmergencySafetyNet().process([message])
    assert message.get("intent")["name"] == "emergency"
