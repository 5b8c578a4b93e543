"""The web app: chat page and widget, staff review, health."""
