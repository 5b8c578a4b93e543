"""Rasa SDK actions: one class per file, thin, calling bot.knowledge and friends.

`python -m rasa_sdk --actions bot.actions` imports every module in this package.
"""
