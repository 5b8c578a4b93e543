"""The project's own language pipeline: spaCy patterns, the emergency safety net."""
