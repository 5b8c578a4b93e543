"""One fix to Rasa 3.6's hot path, found by profiling (`make bench`, py-spy).

Rasa checks every reply from the action server against a JSON schema with
`jsonschema.validate()`. That call first checks the *schema itself* against the JSON Schema
2020-12 meta-schema and builds a new validator, every time. In the profile of a Rasa
server answering 20 concurrent conversations, that was about 30% of all CPU time: more
than the NLU pipeline and TED together.

`install()` replaces `RemoteAction._validate_action_result` with the same check done by a
validator built once: the same schema (`RemoteAction.action_response_format_spec()`), the
same validator class, the same `best_match` error with Rasa's own hint appended. Responses
are still validated, every one; only the repeated meta-schema check goes.

It is installed by bot.channels.rest at import, so it runs only inside the Rasa server.
If a future Rasa changes the method, `install()` leaves Rasa alone and logs why
(tests/test_rasa_speedups.py fails too, so we notice on upgrade).
"""

from __future__ import annotations

import inspect
import logging
from functools import lru_cache
from typing import Any

from jsonschema import exceptions, validators
from rasa.core.actions.action import RemoteAction

logger = logging.getLogger(__name__)

# The method as Rasa 3.6.21 ships it; we only replace this exact code.
_EXPECTED_SOURCE_FRAGMENT = "validate(result, self.action_response_format_spec())"


@lru_cache(maxsize=1)
def action_response_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)  # once, at start-up
    return cls(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Rasa's `_validate_action_result`, with the validator built once."""
    error = exceptions.best_match(action_response_validator().iter_errors(result))
    if error is not None:
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            "For more information about the format visit "
            "https://rasa.com/docs/rasa/custom-actions"
        )
        raise error
    return True


def install() -> bool:
    """Patch Rasa's RemoteAction once. Returns whether the patch is in place."""
    current = RemoteAction._validate_action_result
    if current is validate_action_result:
        return True
    try:
        source = inspect.getsource(current)
    except (OSError, TypeError):
        source = ""
    if _EXPECTED_SOURCE_FRAGMENT not in source:
        logger.warning("Rasa's action-response check has changed; speed-up not installed.")
        return False
    RemoteAction._validate_action_result = validate_action_result
    return True
