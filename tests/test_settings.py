"""bot.settings: one place for settings, layered .env.example < .env < environment < overrides."""

from __future__ import annotations

from bot.settings import load_settings


def test_layers_and_overrides(tmp_path, monkeypatch):
    (tmp_path / ".env.example").write_text("RASA_PORT=5005\nWEB_PORT=8000\nDATA_DIR=var\n")
    (tmp_path / ".env").write_text("WEB_PORT=8100\n")
    monkeypatch.setenv("RASA_PORT", "6005")
    settings = load_settings(tmp_path)
    assert (settings.rasa_port, settings.web_port) == (6005, 8100)
    assert settings.data_dir == tmp_path / "var"
    overridden = load_settings(tmp_path, overrides={"RASA_PORT": "7005"})
    assert overridden.rasa_port == 7005
    assert load_settings(tmp_path).rasa_port == 6005  # overrides never touch the environment


def test_advice_line_is_empty_by_default(tmp_path):
    settings = load_settings(tmp_path, overrides={"ADVICE_LINE_PHONE": "", "ADVICE_LINE_WEB": ""})
    assert not settings.advice_line.configured
