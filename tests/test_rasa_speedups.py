"""bot/rasa_speedups.py: Rasa's action-response check, built once, still rejects bad replies."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot import rasa_speedups


@pytest.fixture(scope="module")
def action():
    assert rasa_speedups.install(), "Rasa's _validate_action_result changed: review the patch"
    return RemoteAction("action_answer_question", None)


def test_installed_by_the_rest_channel():
    import bot.channels.rest  # noqa: F401  (installs on import)

    assert RemoteAction._validate_action_result is rasa_speedups.validate_action_result


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
            rasa_speedups.validate_action_result(None, case)
            ours_ok = True
        except ValidationError:
            ours_ok = False
        assert ours_ok == rasa_ok, case
