"""TED, remembering its answer for each dialogue state it has seen.

TED (Rasa's transformer dialogue policy) was the largest single cost of a turn once Rasa's
action-response check was fixed (bot.rasa_speedups): about a quarter of the Rasa server's
CPU. Yet its prediction is a pure function of a few categorical values: with `max_history`
4, TED sees only the last five dialogue states (intent, entity *names*, featurised slots,
previous action, active form), never the words a person typed. A triage conversation
passes through few distinct states, so most predictions repeat.

`CachedTEDPolicy` is TEDPolicy plus a bounded, in-memory LRU map from those states to the
prediction. It trains, persists and loads exactly as TEDPolicy (same graph component
type, same files); only prediction looks in the map first. States that carry user text
(end-to-end TED, or a message with no intent) are never cached and never put in the map,
so the map holds no personal data. tests/test_cached_ted.py checks that a cached answer
equals TED's own, over the test stories.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

CACHE_SIZE = 4096


def states_key(states: list[dict[str, Any]]) -> str | None:
    """A stable key for TED's input states; None when they hold user text."""
    for state in states:
        if "text" in (state.get("user") or {}):
            return None
    return json.dumps(states, sort_keys=True, default=list)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True
)
class CachedTEDPolicy(TEDPolicy):
    """TEDPolicy whose predictions are reused for dialogue states seen before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._predictions: OrderedDict[str, PolicyPrediction] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    def _cacheable(self) -> bool:
        # With text features TED looks at the words of the last message: never cache that.
        return self.model is not None and not self.only_e2e and "text" not in self.fake_features

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        precomputations: Any = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        key = None
        if self._cacheable():
            key = states_key(
                self._prediction_states(tracker, domain, rule_only_data=rule_only_data)
            )
        if key is not None and key in self._predictions:
            self._predictions.move_to_end(key)
            self.cache_hits += 1
            return self._copy(self._predictions[key])
        prediction = super().predict_action_probabilities(
            tracker, domain, rule_only_data=rule_only_data,
            precomputations=precomputations, **kwargs,
        )
        if key is not None and not prediction.optional_events:
            self.cache_misses += 1
            self._predictions[key] = self._copy(prediction)
            if len(self._predictions) > CACHE_SIZE:
                self._predictions.popitem(last=False)
        return prediction

    def _copy(self, prediction: PolicyPrediction) -> PolicyPrediction:
        """A fresh prediction, so no caller can change the remembered one."""
        return self._prediction(
            list(prediction.probabilities),
            is_end_to_end_prediction=prediction.is_end_to_end_prediction,
            diagnostic_data=prediction.diagnostic_data,
        )
