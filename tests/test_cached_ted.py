"""bot/policies/cached_ted.py: a remembered prediction is TED's own prediction.

Loads CachedTEDPolicy from the trained model, replays every prefix of the training stories
through it, and compares each answer with plain TEDPolicy's on the same tracker.
"""

from __future__ import annotations

import numpy as np
import pytest
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage

from bot.policies.cached_ted import CachedTEDPolicy, states_key
from bot.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def policy_and_domain(trained_model, tmp_path_factory):
    storage, metadata = LocalModelStorage.from_model_archive(
        tmp_path_factory.mktemp("model"), trained_model
    )
    nodes = [n for n in metadata.predict_schema.nodes.values() if n.uses is CachedTEDPolicy]
    assert len(nodes) == 1, "config.yml should use CachedTEDPolicy exactly once"
    node = nodes[0]
    policy = CachedTEDPolicy.load(
        {**CachedTEDPolicy.get_default_config(), **node.config}, storage, node.resource,
        ExecutionContext(metadata.predict_schema, metadata.model_id),
    )
    return policy, metadata.domain


@pytest.fixture(scope="module")
def trackers(policy_and_domain):
    from rasa.core.training import load_data

    _, domain = policy_and_domain
    loaded = load_data(str(PROJECT_ROOT / "bot" / "data"), domain, augmentation_factor=0)
    prefixes = [
        prior for tracker in loaded for prior, _ in tracker.generate_all_prior_trackers()
    ]
    assert len(prefixes) > 40
    return prefixes


def test_cached_predictions_equal_teds_own(policy_and_domain, trackers):
    policy, domain = policy_and_domain
    for _ in range(2):  # the second pass answers from the cache
        for tracker in trackers:
            cached = policy.predict_action_probabilities(tracker, domain)
            own = TEDPolicy.predict_action_probabilities(policy, tracker, domain)
            np.testing.assert_allclose(cached.probabilities, own.probabilities, atol=1e-6)
            assert cached.policy_name == "CachedTEDPolicy"
    assert policy.cache_hits >= len(trackers)
    assert 0 < policy.cache_misses <= len(trackers)


def test_a_remembered_prediction_cannot_be_changed_by_a_caller(policy_and_domain, trackers):
    policy, domain = policy_and_domain
    first = policy.predict_action_probabilities(trackers[3], domain)
    first.probabilities[0] = 123.0
    again = policy.predict_action_probabilities(trackers[3], domain)
    assert again.probabilities[0] != 123.0


def test_states_with_user_text_are_never_keys():
    assert states_key([{"user": {"text": "my name is Ana"}}]) is None
    assert states_key([{"user": {"intent": "greet"}}, {"prev_action": {"action_name": "x"}}])
    assert "Ana" not in (states_key([{"user": {"intent": "greet", "entities": ("role",)}}]) or "")
