"""Four small fixes to Rasa 3.6, installed inside the Rasa server by bot.channels.rest.

Each was found by profiling (`make bench`, py-spy) or by reading Rasa's log, and each
replaces one function only when its code is still exactly what Rasa 3.6.21 ships (else it
leaves Rasa alone and logs why; tests/test_rasa_patches.py fails too, so an upgrade is
noticed).

1. **Action replies are checked with a validator built once.** Rasa checks every reply
   from the action server with `jsonschema.validate()`, which first checks the *schema*
   against the JSON Schema meta-schema and builds a new validator, every time: about 30%
   of the Rasa server's CPU under load. Same schema, same validator class, same error with
   Rasa's hint; only the repeated meta-schema check goes.
2. **Button payloads are not templates.** Rasa fills `{slot}` placeholders in every string
   of a response, button payloads included. A payload such as `/inform{"nation":
   "scotland"}` then fails, and Rasa logs an ERROR with a traceback for every button of
   every such message (a tenth of a turn's CPU), including a preview of *all slot values*.
   Strings that are intent payloads (start with "/") are returned as they are, which is
   what Rasa ends up sending anyway.
3. **No local variables in logged tracebacks.** Rasa's JSON logs render exceptions with
   the local variables of every frame (`structlog.processors.dict_tracebacks`), so any
   logged error can carry message text or slot values. The same renderer, without locals.
4. **Event classes are looked up once per name.** To load a stored conversation Rasa finds
   each event's class by walking every subclass of `Event`, for every event, every turn
   (about 7% of the server's main thread). The first class found for a name is remembered;
   names never seen fall through to Rasa's own walk, so errors and defaults are unchanged.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import structlog
from jsonschema import exceptions, validators
from rasa.core.actions.action import RemoteAction
from rasa.core.nlg import interpolator
from rasa.shared.core.events import Event

logger = logging.getLogger(__name__)


def _source_has(function: Callable, fragment: str) -> bool:
    try:
        return fragment in inspect.getsource(function)
    except (OSError, TypeError):
        return False


# --- 1. the action-response check ---------------------------------------------------------


@lru_cache(maxsize=1)
def action_response_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)  # once, at start-up
    return cls(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Rasa's `RemoteAction._validate_action_result`, with the validator built once."""
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


def _install_validator() -> bool:
    current = RemoteAction._validate_action_result
    if current is validate_action_result:
        return True
    if not _source_has(current, "validate(result, self.action_response_format_spec())"):
        return False
    RemoteAction._validate_action_result = validate_action_result
    return True


# --- 2. intent payloads are not templates -------------------------------------------------

_rasa_interpolate_text = interpolator.interpolate_text


def interpolate_text(response: str, values: dict[str, Any]) -> str:
    """Rasa's `interpolate_text`, except that an intent payload is left as it is."""
    if response.startswith("/"):
        return response
    return _rasa_interpolate_text(response, values)


def _install_interpolation() -> bool:
    if interpolator.interpolate_text is interpolate_text:
        return True
    if not _source_has(interpolator.interpolate, "interpolate_text(v, values)"):
        return False
    interpolator.interpolate_text = interpolate_text  # `interpolate` looks it up here
    return True


# --- 3. tracebacks without local variables --------------------------------------------------

tracebacks_without_locals = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def _install_quiet_tracebacks() -> bool:
    processors = list(structlog.get_config().get("processors") or [])
    if tracebacks_without_locals in processors:
        return True
    if structlog.processors.dict_tracebacks not in processors:
        return True  # Rasa's console renderer (a terminal) or not configured yet: nothing to do
    index = processors.index(structlog.processors.dict_tracebacks)
    processors[index] = tracebacks_without_locals
    structlog.configure(processors=processors)
    return True


# --- 4. event classes by name ---------------------------------------------------------------

_rasa_resolve_by_type = Event.resolve_by_type
_event_classes: dict[str, type] = {}


def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
    """Rasa's `Event.resolve_by_type`, remembering each class it finds."""
    found = _event_classes.get(type_name)
    if found is not None:
        return found
    result = _rasa_resolve_by_type(type_name, default)
    if result is not None and result is not default:
        _event_classes[type_name] = result
    return result


def _install_event_lookup() -> bool:
    if Event.resolve_by_type is resolve_by_type:
        return True
    if not _source_has(_rasa_resolve_by_type, "all_subclasses(Event)"):
        return False
    Event.resolve_by_type = staticmethod(resolve_by_type)
    return True


def install() -> dict[str, bool]:
    """Install every patch (idempotent). Returns which are in place."""
    installed = {
        "action_response_validator": _install_validator(),
        "intent_payloads_not_templates": _install_interpolation(),
        "tracebacks_without_locals": _install_quiet_tracebacks(),
        "event_classes_by_name": _install_event_lookup(),
    }
    for name, ok in installed.items():
        if not ok:
            logger.warning("Rasa has changed; patch %r not installed (bot/rasa_patches.py).", name)
    return installed
