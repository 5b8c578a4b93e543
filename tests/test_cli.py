"""The `safe-report` command: each subcommand documented in the README."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.cli import cli
from bot.stack import ensure_secrets, stack_commands, write_endpoints
from bot.tracker_store import ConversationStore, RedactingSQLTrackerStore


def test_help_lists_every_documented_command():
    output = CliRunner().invoke(cli, ["--help"]).output
    for command in ("run", "train", "nlp", "kb", "inbox", "handoffs", "staff", "forget", "purge"):
        assert f"  {command} " in output


def test_nlp_build_writes_the_pipeline(settings):
    result = CliRunner().invoke(cli, ["nlp", "build"])
    assert result.exit_code == 0, result.output
    assert (settings.spacy_nlu_pipeline / "config.cfg").exists()


def _save_conversation(sender: str) -> None:
    store = RedactingSQLTrackerStore(domain=Domain.empty())
    tracker = DialogueStateTracker(sender, [])
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("hello", intent={"name": "greet", "confidence": 1.0}))
    asyncio.run(store.save(tracker))


def test_forget_deletes_one_conversation(settings):
    _save_conversation("keep")
    _save_conversation("drop")
    result = CliRunner().invoke(cli, ["forget", "drop"])
    assert result.exit_code == 0 and "Deleted 2 events." in result.output
    assert ConversationStore().count_events("drop") == 0
    assert ConversationStore().count_events("keep") == 2


def test_purge_reports_every_store(settings):
    result = CliRunner().invoke(cli, ["purge"])
    assert result.exit_code == 0, result.output
    assert "conversations: 0 removed" in result.output
    assert "inbox: 0 removed" in result.output
    assert "handoffs: 0 removed" in result.output


def test_ensure_secrets_fills_empty_keys_once(tmp_path):
    (tmp_path / ".env").write_text("SAFE_REPORT_ENCRYPTION_KEY=\nOTHER=1\n")
    assert sorted(ensure_secrets(tmp_path)) == ["SAFE_REPORT_ENCRYPTION_KEY", "STAFF_SESSION_SECRET"]
    text = (tmp_path / ".env").read_text()
    assert "OTHER=1" in text and (tmp_path / ".env").stat().st_mode & 0o077 == 0
    assert ensure_secrets(tmp_path) == []
    assert (tmp_path / ".env").read_text() == text


def test_stack_binds_loopback_and_keeps_the_api_off(settings, tmp_path):
    endpoints = write_endpoints(settings, tmp_path / "endpoints.yml")
    commands = {c.name: c.argv for c in stack_commands(settings, tmp_path / "m.tar.gz", endpoints)}
    assert "--enable-api" not in commands["rasa"]
    assert commands["rasa"][commands["rasa"].index("--interface") + 1] == "127.0.0.1"
    assert "--no-access-log" in commands["web"]
    assert "RedactingSQLTrackerStore" in endpoints.read_text()


def test_api_is_on_only_with_a_token(settings, tmp_path, monkeypatch):
    from bot import settings as settings_module

    monkeypatch.setenv("RASA_API_TOKEN", "s3cret-token")
    settings_module.get_settings.cache_clear()
    configured = settings_module.get_settings()
    rasa = stack_commands(configured, tmp_path / "m.tar.gz", tmp_path / "e.yml")[0].argv
    assert rasa[rasa.index("--enable-api") + 1] == "--auth-token"
