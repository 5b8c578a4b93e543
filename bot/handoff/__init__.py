"""Handoffs to Liberty's advice line: the consented, redacted record staff review.

    from bot.handoff import HandoffStore, HandoffRequest
    store = HandoffStore()                      # HANDOFF_DATABASE_URL, else DATA_DIR/handoffs.db
    ref = store.create(HandoffRequest(...))     # e.g. "K7Q-XM2-PRT"
"""

from bot.handoff.reference import new_reference, normalize_reference
from bot.handoff.store import (
    HandoffError,
    HandoffNotFound,
    HandoffRequest,
    HandoffStore,
)

__all__ = [
    "HandoffError",
    "HandoffNotFound",
    "HandoffRequest",
    "HandoffStore",
    "new_reference",
    "normalize_reference",
]
