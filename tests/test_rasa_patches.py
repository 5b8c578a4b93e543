"""bot/rasa_patches.py: each fix to Rasa is installed and keeps Rasa's behaviour."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.nlg import interpolator

from bot import rasa_patches


@pytest.fixture(scope="module")
def installed():
    result = rasa_patches.install()
    assert all(result.values()), f"a patch no longer fits this Rasa: {result}"
    return result


def test_installed_by_the_rest_channel(installed):
    import bot.channels.rest  # noqa: F401  (installs on import)

    assert RemoteAction._validate_action_result is rasa_patches.validate_action_result
    assert interpolator.interpolate_text is rasa_patches.interpolate_text


# --- 1. action-response validator -----------------------------------------------------------


@pytest.fixture(scope="module")
def action(installed):
    return RemoteAction("action_answer_question", None)


def test_valid_responses_pass(action):
    assert action._validate_action_result({"events": [], "responses": [{"text": "hi"}]})
    assert action._validate_action_result(
        {"events": [{"event": "slot", "name": "role", "value": "victim"}], "responses": []}
    )


@pytest.mark.parametrize("bad", [
    {"events": "not a list", "responses": []},
    {"events": [], "responses": "not a list"},
    {"events": [{"event": "slot", "name": 3}], "responses": []},
    {"events": [{"event": "no_such_event"}], "responses": []},
])
def test_invalid_responses_are_rejected_with_rasas_hint(action, bad):
    with pytest.raises(ValidationError) as raised:
        action._validate_action_result(bad)
    assert "Failed to validate Action server response" in raised.value.message


def test_same_verdicts_as_rasas_own_check():
    from jsonschema import validate

    schema = RemoteAction.action_response_format_spec()
    cases = [
        {"events": [], "responses": []},
        {"events": [{"event": "bot", "text": "x"}]},
        {"events": [{"event": "followup"}], "responses": []},
        {"events": [{"event": "user", "text": 5}], "responses": []},
        {"responses": [1]},
    ]
    for case in cases:
        try:
            validate(case, schema)
            rasa_ok = True
        except ValidationError:
            rasa_ok = False
        try:
            rasa_patches.validate_action_result(None, case)
            ours_ok = True
        except ValidationError:
            ours_ok = False
        assert ours_ok == rasa_ok, case


# --- 2. intent payloads are not templates ---------------------------------------------------


def test_button_payloads_with_entities_pass_unchanged_and_quietly(installed, caplog):
    response = {
        "text": "Where do you live, {name}?",
        "buttons": [{"title": "Scotland", "payload": '/inform{"nation": "scotland"}'}],
    }
    with caplog.at_level(logging.DEBUG):
        filled = interpolator.interpolate(response, {"name": "Sam", "nation": None})
    assert filled["text"] == "Where do you live, Sam?"  # placeholders still work
    assert filled["buttons"][0]["payload"] == '/inform{"nation": "scotland"}'
    assert "interpolator" not in caplog.text


# --- 3. tracebacks without locals -------------------------------------------------------------


def test_logged_tracebacks_carry_no_local_variables(caplog):
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.INFO)  # as `rasa run` does, before loading our channel
    rasa_patches.install()
    secret = "canary-slot-value-0451"
    try:
        values = {"safe_times": secret}  # noqa: F841  (a local the old renderer printed)
        raise KeyError("x")
    except KeyError:
        with caplog.at_level(logging.INFO):
            structlog.get_logger().exception("test.event")
    out = caplog.records[-1].getMessage()
    record = json.loads(out)
    assert record["event"] == "test.event" and record["exception"][0]["frames"]
    assert secret not in out
    assert record["exception"][0]["frames"][0]["locals"] is None


# --- 4. event classes by name ---------------------------------------------------------------


def test_event_classes_are_the_ones_rasa_finds(installed):
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
    from rasa.shared.utils.common import all_subclasses

    assert Event.resolve_by_type is rasa_patches.resolve_by_type
    for cls in all_subclasses(Event):
        for _ in range(2):  # the second answer comes from the map
            assert Event.resolve_by_type(cls.type_name) is rasa_patches._rasa_resolve_by_type(
                cls.type_name
            )
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("no_such_event", ActionExecuted) is ActionExecuted
    assert Event.resolve_by_type("topic") is None
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")
    # A whole stored event list still loads as Rasa loads it.
    events = [{"event": "action", "name": "action_listen"},
              {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}},
              {"event": "slot", "name": "role", "value": "victim"}]
    from rasa.shared.core.events import deserialise_events

    assert [type(e) for e in deserialise_events(events)] == [ActionExecuted, UserUttered, SlotSet]
