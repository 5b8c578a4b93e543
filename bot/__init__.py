"""safe-report: a triage chatbot that helps and never becomes a route by which data leaks."""

__version__ = "0.1.0"
