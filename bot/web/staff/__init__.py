"""The staff review app (mounted at /staff by bot.web.app)."""

from bot.web.staff.app import create_staff_app

__all__ = ["create_staff_app"]
