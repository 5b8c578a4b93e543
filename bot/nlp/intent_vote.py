"""Two intent classifiers, one vote.

On a few thousand short, hand-written examples and no pretrained vectors, DIET and a
logistic regression over the same sparse features make different mistakes. This component
is Rasa's own LogisticRegressionClassifier, placed after DIET in config.yml: it trains as
usual, and when it predicts it averages its probabilities with the ranking DIET left on
the message. The emergency safety net still runs after it and has the last word.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

RANKING_SHOWN = 10


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class DietLogisticRegressionVote(LogisticRegressionClassifier):
    """LogisticRegressionClassifier whose prediction is averaged with DIET's."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **LogisticRegressionClassifier.get_default_config(),
            "ranking_length": 0,  # keep every probability for the vote
            "weight": 0.5,  # the logistic regression's share of the vote
        }

    def process(self, messages: list[Message]) -> list[Message]:
        earlier = [list(m.get(INTENT_RANKING_KEY) or []) for m in messages]
        messages = super().process(messages)
        weight = float(self.config.get("weight", 0.5))
        for message, diet_ranking in zip(messages, earlier, strict=True):
            if not diet_ranking:
                continue  # nothing to vote with (e.g. during training)
            votes: dict[str, float] = defaultdict(float)
            for entry in diet_ranking:
                votes[entry["name"]] += (1 - weight) * float(entry["confidence"])
            for entry in message.get(INTENT_RANKING_KEY) or []:
                votes[entry["name"]] += weight * float(entry["confidence"])
            ranking = [
                {"name": name, "confidence": confidence}
                for name, confidence in sorted(votes.items(), key=lambda kv: -kv[1])
            ][:RANKING_SHOWN]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
