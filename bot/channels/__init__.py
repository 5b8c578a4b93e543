"""Rasa input channels of safe-report."""
