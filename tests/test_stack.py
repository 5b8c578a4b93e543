"""The whole stack, for real: the done-when of the Foundation issue."""

from __future__ import annotations

import json
import secrets
import sqlite3

import pytest
import requests

pytestmark = pytest.mark.integration


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def test_hello_gets_a_greeting_with_999(stack):
    replies = stack.say(secrets.token_hex(16), "hello")
    assert "computer program" in texts(replies) or "chatbot" in texts(replies)
    assert "999" in texts(replies)
    buttons = [b["title"] for r in replies for b in r.get("buttons", [])]
    assert "I want to talk to a person" in buttons


def test_healthz_answers(stack):
    reply = requests.get(f"{stack.web_url}/healthz", timeout=5)
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"
    assert "default-src 'self'" in reply.headers["content-security-policy"]


def test_emergency_is_answered_first_with_999_and_55(stack):
    replies = stack.say(secrets.token_hex(16), "hes outside the door with a knife")
    first = replies[0]["text"]
    assert "999" in first and "55" in first


def test_conversation_is_stored_in_sqlite_under_data_dir_and_survives_restart(stack):
    sender = secrets.token_hex(16)
    stack.say(sender, "hello")
    db = stack.settings.data_dir / "conversations.db"
    with sqlite3.connect(db) as connection:
        (count,) = connection.execute(
            "SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender,)
        ).fetchone()
    assert count > 0

    stack.stop("rasa")
    stack.start("rasa")
    replies = stack.say(sender, "are you a robot?")
    assert "not a person" in texts(replies) or "computer program" in texts(replies)
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT type_name, data FROM events WHERE sender_id = ? ORDER BY id", (sender,)
        ).fetchall()
    user_texts = [json.loads(d).get("text") for t, d in rows if t == "user"]
    # Both turns are in the one conversation: the restart lost nothing.
    assert user_texts[:1] == ["hello"] and len(user_texts) == 2
