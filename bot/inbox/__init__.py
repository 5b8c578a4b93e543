"""The review inbox: messages the bot was unsure of, redacted and unlinked, for maintainers."""

from bot.inbox.store import InboxItem, InboxStore

__all__ = ["InboxItem", "InboxStore"]
