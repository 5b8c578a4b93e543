"""End to end through the REST channel: personal data never rests in plain text.

Chats personal data to the real running stack (including during a handoff), then reads
every file under DATA_DIR and every log line of the three servers, byte by byte.
"""

from __future__ import annotations

import secrets
import sqlite3

import pytest

pytestmark = pytest.mark.integration

SECRETS = {
    "name": "Amina Yusuf",
    "phone": "07700 900461",
    "email": "amina.yusuf.canary@example.org",
    "postcode": "SW1A 2AA",
    "address": "14 Larkspur Road",
    "nhs": "943 476 5919",
}


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


def every_byte_under(path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_chat_and_handoff_leave_no_personal_data_at_rest_or_in_logs(stack):
    sender = secrets.token_hex(16)
    stack.say(sender, f"hi, my name is {SECRETS['name']} and I live at {SECRETS['address']}, {SECRETS['postcode']}")
    stack.say(sender, f"my husband hits me, my NHS number is {SECRETS['nhs']}")
    stack.say(sender, "/affirm")  # safe now (triage danger question)
    stack.say(sender, "/request_human")
    stack.say(sender, "/affirm")  # consent
    stack.say(sender, '/inform{"contact_method": "phone"}')
    replies = stack.say(sender, SECRETS["phone"])
    stack.say(sender, f"after 6pm, or email {SECRETS['email']}")
    stack.say(sender, "/deny")  # do not leave a message
    replies = stack.say(sender, "/deny")  # do not say who they are
    confirmation = texts(replies)
    assert "reference is" in confirmation
    assert "ending" in confirmation and SECRETS["phone"] not in confirmation

    data = every_byte_under(stack.settings.data_dir)
    logs = stack.logs().encode()
    for label, value in SECRETS.items():
        for variant in {value, value.replace(" ", ""), value.lower()}:
            assert variant.encode() not in data, f"{label} found under DATA_DIR"
            assert variant.encode() not in logs, f"{label} found in the logs"
    # Rasa logs tracebacks with every frame's local variables, and logged one for each
    # button with entities (bot/rasa_patches.py stops both).
    assert b"interpolator.interpolate.text" not in logs
    assert b'"locals": {' not in logs

    # The detail is in the handoff store, encrypted, and readable after reveal with the
    # stack's key (this test process reads settings as the stack does).
    from bot import settings as settings_module
    from bot.handoff import HandoffStore

    reference = confirmation.split("reference is ")[1].split(".")[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAFE_REPORT_ENCRYPTION_KEY", stack.env["SAFE_REPORT_ENCRYPTION_KEY"])
        settings_module.get_settings.cache_clear()
        store = HandoffStore(stack.settings.handoffs_db)
        try:
            record = store.get(reference, actor="test")
            assert record["contact_method"] == "phone"
            assert store.reveal(reference, actor="test") == SECRETS["phone"]
        finally:
            store.close()
    settings_module.get_settings.cache_clear()


def test_no_ip_address_is_stored(stack):
    sender = secrets.token_hex(16)
    stack.say(sender, "hello")
    with sqlite3.connect(stack.settings.data_dir / "conversations.db") as connection:
        rows = connection.execute("SELECT data FROM events WHERE sender_id = ?", (sender,)).fetchall()
    assert rows and not any("127.0.0.1" in data for (data,) in rows)
    assert b"127.0.0.1" not in every_byte_under(stack.settings.data_dir)


def test_forget_command_deletes_the_conversation_at_once(stack):
    sender = secrets.token_hex(16)
    stack.say(sender, "hello")
    replies = stack.say(sender, "/forget")
    assert "deleted" in texts(replies)
    with sqlite3.connect(stack.settings.data_dir / "conversations.db") as connection:
        (count,) = connection.execute(
            "SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender,)
        ).fetchone()
    assert count == 0
