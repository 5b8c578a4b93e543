"""Retention: every store has a limit, and this deletes what is past it.

`purge_all` is what `safe-report purge` runs on demand and what the web app runs on a
schedule (every PURGE_INTERVAL_MINUTES) while the stack is up.
"""

from __future__ import annotations

from bot.settings import Settings


def purge_all(settings: Settings) -> dict[str, int]:
    """Purge every store. Returns how many items each store removed."""
    from bot.handoff import HandoffStore
    from bot.inbox import InboxStore
    from bot.tracker_store import ConversationStore

    removed = {
        "conversations": ConversationStore(settings.tracker_url).purge_idle(
            settings.conversation_retention_hours
        ),
        "inbox": InboxStore(settings.inbox_url).purge(settings.inbox_retention_days),
    }
    handoffs = HandoffStore(settings=settings)
    try:
        removed["handoffs"] = handoffs.purge(settings.handoff_retention_days)
    finally:
        handoffs.close()
    return removed
