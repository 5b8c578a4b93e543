"""The emergency safety net: a deterministic detector of danger right now.

It does not depend on the trained model. `detect_danger` is a pure function of the text and
the patterns in `patterns/danger.yml`; `EmergencySafetyNet` is the Rasa component that runs it
after the intent classifier and forces the `emergency` intent when it fires, so the rule
`emergency -> utter_emergency` answers with 999 first in that very turn.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DANGER_PATTERNS = Path(__file__).parent / "patterns" / "danger.yml"
EMERGENCY_INTENT = "emergency"


@dataclass(frozen=True)
class DangerPatterns:
    normalise: tuple[tuple[re.Pattern, str], ...]
    danger: tuple[re.Pattern, ...]
    rescue: tuple[re.Pattern, ...]
    question: tuple[re.Pattern, ...]
    safe: tuple[re.Pattern, ...]
    threat: tuple[re.Pattern, ...]
    immediacy: tuple[re.Pattern, ...]
    elsewhere: tuple[re.Pattern, ...]
    past: tuple[re.Pattern, ...]
    present: tuple[re.Pattern, ...]


@lru_cache(maxsize=4)
def load_patterns(path: Path = DANGER_PATTERNS) -> DangerPatterns:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    groups = raw.get("groups", {})

    def expand(pattern: str) -> str:
        # "{agent}" names a group; "{0,40}" is a regex repeat and stays as it is.
        return re.sub(r"\{([a-z_]+)\}", lambda m: groups.get(m.group(1), m.group(0)), pattern)

    def compile_all(key: str) -> tuple[re.Pattern, ...]:
        return tuple(re.compile(expand(p)) for p in raw.get(key, []))

    return DangerPatterns(
        normalise=tuple((re.compile(k), v) for k, v in raw.get("normalise", {}).items()),
        danger=compile_all("danger"),
        rescue=compile_all("rescue"),
        question=compile_all("question"),
        safe=compile_all("safe"),
        threat=compile_all("threat"),
        immediacy=compile_all("immediacy"),
        elsewhere=compile_all("elsewhere"),
        past=compile_all("past"),
        present=compile_all("present"),
    )


def normalise(text: str, patterns: DangerPatterns | None = None) -> str:
    patterns = patterns or load_patterns()
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    # "he's" -> "he s" so one rule handles "hes", "he's" and "he s".
    text = re.sub(r"(\w)'(\w)", r"\1 \2", text)
    text = re.sub(r"\s+", " ", text).strip()
    for pattern, replacement in patterns.normalise:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class DangerSignal:
    pattern: str
    kind: str  # "danger", "rescue" or "threat-now"


def detect_danger(text: str) -> DangerSignal | None:
    """A signal when the text says someone is in danger now; None otherwise."""
    patterns = load_patterns()
    clean = normalise(text, patterns)
    if not clean or any(p.search(clean) for p in patterns.safe):
        return None
    past = any(p.search(clean) for p in patterns.past)
    present = any(p.search(clean) for p in patterns.present)
    if past and not present:
        return None
    for pattern in patterns.danger:
        if pattern.search(clean):
            return DangerSignal(pattern.pattern, "danger")
    # The looser layers below do not count for questions about calling for help
    # ("can I call the police now?") or when the danger is said to be elsewhere.
    if any(p.search(clean) for p in patterns.question + patterns.elsewhere):
        return None
    for pattern in patterns.rescue:
        if pattern.search(clean):
            return DangerSignal(pattern.pattern, "rescue")
    threat = next((p for p in patterns.threat if p.search(clean)), None)
    if threat and any(p.search(clean) for p in patterns.immediacy):
        return DangerSignal(threat.pattern, "threat-now")
    return None


def is_danger_now(text: str) -> bool:
    return detect_danger(text) is not None


# An answer that is only contact details or times ("weekdays after 10am", an email, a
# number) is not a danger message, whatever a classifier trained on short danger cries says.
CONTACT_OR_TIME = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\+?\d[\d\s()-]{6,}\d"
    r"|\b\d{1,2}(?::\d{2})?\s*(?:am|pm)\b|\b\d{1,2}[:.]\d{2}\b"
    r"|\b\d{1,2}\s*(?:-|to|till|until)\s*\d{1,2}\b"
    r"|\b(?:weekdays?|weekends?|mornings?|afternoons?|evenings?|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|any ?time|lunchtime)\b",
    re.IGNORECASE,
)


def clearly_not_danger(text: str) -> bool:
    """The person says they are safe, or only gives contact details or times.

    Used to overrule a classifier's `emergency` when no danger pattern fired: "yes I'm safe
    now" must not get the 999 message and end the conversation.
    """
    patterns = load_patterns()
    clean = normalise(text, patterns)
    return any(p.search(clean) for p in patterns.safe) or bool(CONTACT_OR_TIME.search(text))


# --- the Rasa component ---------------------------------------------------------------
# Imported lazily by Rasa from config.yml; kept below the pure functions so that the
# detector can be used (and tested) without loading Rasa.

from rasa.engine.graph import ExecutionContext, GraphComponent  # noqa: E402
from rasa.engine.recipes.default_recipe import DefaultV1Recipe  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.engine.storage.storage import ModelStorage  # noqa: E402
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class EmergencySafetyNet(GraphComponent):
    """Forces the `emergency` intent when `detect_danger` fires, whatever DIET said."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EmergencySafetyNet:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            # Button payloads such as "/affirm" are not free text.
            if text.startswith("/"):
                continue
            signal = detect_danger(text)
            if signal is None:
                self._overrule_false_alarm(message, text)
                continue
            forced = {"name": EMERGENCY_INTENT, "confidence": 1.0}
            ranking = [
                r for r in (message.get(INTENT_RANKING_KEY) or [])
                if r.get("name") != EMERGENCY_INTENT
            ]
            message.set(INTENT, forced, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [forced, *ranking], add_to_output=True)
            message.set("safety_net", signal.kind, add_to_output=True)
        return messages

    @staticmethod
    def _overrule_false_alarm(message: Message, text: str) -> None:
        intent = message.get(INTENT) or {}
        if intent.get("name") != EMERGENCY_INTENT or not clearly_not_danger(text):
            return
        ranking = [
            r for r in (message.get(INTENT_RANKING_KEY) or [])
            if r.get("name") not in (EMERGENCY_INTENT, "nlu_fallback")
        ]
        replacement = ranking[0] if ranking else {"name": "inform", "confidence": 0.0}
        message.set(INTENT, replacement, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking or [replacement], add_to_output=True)
        message.set("safety_net", "overruled", add_to_output=True)
