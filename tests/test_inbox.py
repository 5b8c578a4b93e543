"""bot.inbox on a real SQLite file and (marked `services`) a real PostgreSQL database, and
its CLI."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import date

import pytest
import yaml
from click.testing import CliRunner
from rasa.shared.nlu.training_data.loading import load_data

from bot.inbox import InboxStore
from bot.inbox.cli import inbox
from bot.settings import PROJECT_ROOT
from tests.conftest import database_bytes, table_columns


@pytest.fixture
def settings(settings, store_url, monkeypatch):
    """conftest's settings, with the inbox on SQLite or on a fresh PostgreSQL database."""
    from bot import settings as settings_module

    monkeypatch.setenv("INBOX_DATABASE_URL", store_url)
    settings_module.get_settings.cache_clear()
    return settings_module.get_settings()


def test_items_are_deduplicated_and_carry_no_link(settings):
    store = InboxStore()
    store.add("wot if my boss [NAME] keeps my pasport", "labour_exploitation", 0.41)
    store.add("Wot if my boss [NAME]  keeps my pasport", "labour_exploitation", 0.35)
    store.add("/affirm", "affirm", 0.2)  # button payloads are not messages
    (item,) = store.items()
    assert item.count == 2 and item.confidence == 0.35
    columns = table_columns(store, "items")
    assert columns == {"key", "text", "predicted_intent", "confidence", "count", "first_seen", "exported_at"}


def test_export_is_valid_rasa_yaml_and_clear_removes_exported(settings, tmp_path):
    store = InboxStore()
    store.add("can [NAME] come with me to the police", "ask_question", 0.3)
    store.add("ghjk", "out_of_scope", 0.2)
    text = store.export_yaml()
    assert "# confidence 0.30" in text
    path = tmp_path / "inbox.yml"
    path.write_text(text)
    data = load_data(str(path))
    examples = {m.get("text"): m.get("intent") for m in data.training_examples}
    assert examples["can [NAME] come with me to the police"] == "ask_question"
    assert yaml.safe_load(text)["version"] == "3.1"
    store.add("a new one", "greet", 0.1)
    assert store.clear() == 2
    assert [i.text for i in store.items()] == ["a new one"]


def test_purge_removes_old_items(settings):
    store = InboxStore()
    store.add("old words", "greet", 0.1, today=date(2026, 1, 1))
    store.add("new words", "greet", 0.1, today=date(2026, 11, 20))
    assert store.purge(retention_days=30, today=date(2026, 11, 25)) == 1
    assert [i.text for i in store.items()] == ["new words"]
    if store.dialect == "sqlite":  # secure_delete (PostgreSQL keeps the bytes until reused)
        assert b"old words" not in database_bytes(store)
    else:
        assert store.url == settings.inbox_database_url
        assert not list(settings.data_dir.glob("inbox.db*"))


def test_cli_list_export_clear(settings):
    InboxStore().add("hm [PHONE] is that ok", "ask_question", 0.2)
    runner = CliRunner()
    listed = runner.invoke(inbox, ["list"])
    assert "ask_question" in listed.output and "1 items" in listed.output
    exported = runner.invoke(inbox, ["export"])
    assert "- text: " in exported.output
    cleared = runner.invoke(inbox, ["clear"])
    assert "Removed 1 items." in cleared.output


@pytest.mark.integration
def test_unsure_messages_reach_the_inbox_redacted_and_export_validates(stack, tmp_path):
    sender = secrets.token_hex(16)
    stack.say(sender, "plorb zindle quaxer 07700 900555 wibbly amina.canary@example.org")
    store = InboxStore(stack.settings.inbox_db)
    texts = [item.text for item in store.items()]
    assert any("[PHONE]" in t and "[EMAIL]" in t for t in texts), texts
    raw = b"".join(p.read_bytes() for p in stack.settings.data_dir.glob("inbox.db*"))
    assert b"07700 900555" not in raw and b"amina.canary" not in raw
    assert sender.encode() not in raw

    data_dir = tmp_path / "exported"
    data_dir.mkdir()
    (data_dir / "inbox.yml").write_text(store.export_yaml())
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "data", "validate", "--data", str(data_dir),
         "--domain", str(PROJECT_ROOT / "domain.yml")],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

