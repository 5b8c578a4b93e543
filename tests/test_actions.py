"""Every custom action, with the SDK's own Tracker and CollectingDispatcher.

The knowledge base is the real one, built from knowledge/ into the test's DATA_DIR.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.advice_line import ActionAdviceLine
from bot.actions.answer_question import ActionAnswerQuestion
from bot.actions.answer_situation import ActionAnswerSituation, choose_article
from bot.actions.explain_handoff import ActionExplainHandoff
from bot.actions.fallback import ActionDefaultAskAffirmation, ActionDefaultFallback
from bot.actions.forget_conversation import ActionForgetConversation
from bot.actions.handoff_form import ValidateHandoffForm, handoff_questions
from bot.actions.triage_form import ValidateTriageForm, triage_questions


@pytest.fixture
def kb_settings(settings, knowledge_db):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(knowledge_db, settings.knowledge_db)
    return settings


def make_tracker(text: str = "", intent: str = "ask_question", slots: dict | None = None,
                 ranking: list | None = None, events: list | None = None) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}],
        "entities": [],
    }
    return Tracker("test-sender", slots or {}, latest, events or [], False, None, {}, "action_listen")


def run(action, tracker: Tracker, dispatcher: CollectingDispatcher | None = None):
    dispatcher = dispatcher or CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def all_text(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def payloads(messages: list[dict]) -> list[dict]:
    return [m["custom"] for m in messages if m.get("custom")]


# --- answers -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "what, role, fear, expected",
    [
        ("domestic_abuse", "victim", True, "domestic-abuse-immigration-threats"),
        ("domestic_abuse", "victim", False, "domestic-abuse-support-migrants"),
        ("sexual_violence", "victim", False, "sexual-violence-support"),
        ("modern_slavery", "victim", True, "modern-slavery-trafficking"),
        (None, "witness", True, "witness-rights"),
        ("assault", "victim", True, "reporting-crime-with-insecure-status"),
        ("skipped", "victim", False, "victims-code-rights"),
    ],
)
def test_choose_article(what, role, fear, expected):
    assert choose_article(what, role, fear) == expected


def test_answer_situation_gives_summary_contacts_sources_and_payload(kb_settings):
    tracker = make_tracker(slots={"what_happened": "domestic_abuse", "role": "victim",
                                  "immigration_fear": True, "nation": "scotland"})
    messages, events = run(ActionAnswerSituation(), tracker)
    text = all_text(messages)
    assert "What you can do next" in text
    assert "Who can help" in text
    assert "information, not legal advice" in text
    (payload,) = payloads(messages)
    assert payload["article_id"] == "domestic-abuse-immigration-threats"
    assert payload["sources"] and payload["last_reviewed"]
    assert SlotSet("last_article", "domestic-abuse-immigration-threats") in events
    titles = [b["title"] for m in messages for b in m.get("buttons", [])]
    assert "Talk to Liberty's advice line" in titles


def test_answer_question_finds_the_right_article(kb_settings):
    tracker = make_tracker("will the doctor tell the home office about me")
    messages, events = run(ActionAnswerQuestion(), tracker)
    assert payloads(messages)[0]["article_id"] == "healthcare-without-fear"


def test_a_button_press_asks_for_the_question(kb_settings):
    messages, events = run(ActionAnswerQuestion(), make_tracker("/ask_question"))
    assert messages[0]["response"] == "utter_ask_question_prompt"
    assert events == []


def test_fear_is_acknowledged_before_the_answer(kb_settings):
    tracker = make_tracker("if i go to the police will they deport me", "fear_immigration_enforcement")
    messages, _ = run(ActionAnswerQuestion(), tracker)
    assert messages[0]["response"] == "utter_acknowledge_fear"
    assert payloads(messages)


def test_no_match_says_so_honestly_and_offers_the_advice_line(kb_settings):
    messages, events = run(ActionAnswerQuestion(), make_tracker("zzqx vvbn"))
    assert "don't have good information" in all_text(messages)
    assert events == []


def test_knowledge_base_down_gets_a_calm_answer(settings):
    messages, _ = run(ActionAnswerSituation(), make_tracker(slots={"role": "witness"}))
    assert "can't look that up right now" in all_text(messages)
    assert "999" in all_text(messages)


# --- triage form ---------------------------------------------------------------------------

def test_triage_asks_danger_first_for_abuse_and_nation_when_it_matters():
    assert triage_questions("domestic_abuse", "victim", None, None) == ["danger_now", "nation"]
    assert triage_questions(None, "victim", None, None) == ["what_happened"]
    assert triage_questions(None, "witness", None, None) == []
    assert triage_questions("domestic_abuse", "someone_else", None, None) == ["nation"]
    assert triage_questions("theft_fraud", "victim", None, None) == []
    assert triage_questions("domestic_abuse", "victim", "safe", "scotland") == []


@pytest.mark.parametrize("answer", ["not_safe", "unsure"])
def test_not_safe_gets_the_emergency_numbers_at_once(answer):
    dispatcher = CollectingDispatcher()
    result = ValidateTriageForm().validate_danger_now(answer, dispatcher, make_tracker(), {})
    assert result == {"danger_now": answer}
    assert [m["response"] for m in dispatcher.messages] == ["utter_emergency", "utter_emergency_next"]


def test_safe_gets_no_alarm():
    dispatcher = CollectingDispatcher()
    ValidateTriageForm().validate_danger_now("safe", dispatcher, make_tracker(), {})
    assert dispatcher.messages == []


# --- fallback ------------------------------------------------------------------------------

def test_ask_affirmation_offers_likely_readings_as_plain_buttons():
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.4},
        {"name": "domestic_abuse", "confidence": 0.3},
        {"name": "greet", "confidence": 0.2},
        {"name": "witness_crime", "confidence": 0.1},
    ]
    messages, _ = run(ActionDefaultAskAffirmation(), make_tracker("hmm", "nlu_fallback", ranking=ranking))
    buttons = messages[0]["buttons"]
    assert [b["payload"] for b in buttons] == ["/domestic_abuse", "/witness_crime", "/out_of_scope"]
    assert buttons[0]["title"] == "Abuse by a partner or family"


def test_default_fallback_searches_then_offers_the_advice_line(kb_settings):
    messages, events = run(ActionDefaultFallback(), make_tracker("trafficked forced to work", "nlu_fallback"))
    assert payloads(messages)[0]["article_id"] == "modern-slavery-trafficking"
    assert isinstance(events[0], dict) and events[0] == UserUtteranceReverted()

    messages, events = run(ActionDefaultFallback(), make_tracker("qqqq zzzz", "nlu_fallback"))
    assert "advice line" in all_text(messages) and "999" in all_text(messages)


# --- forget, advice line, handoff ---------------------------------------------------------------

def test_forget_says_it_is_done():
    messages, events = run(ActionForgetConversation(), make_tracker("/forget", "forget_conversation"))
    assert messages[0]["response"] == "utter_forgotten" and events == []


def test_advice_line_never_invents_a_number(kb_settings):
    messages, _ = run(ActionAdviceLine(), make_tracker())
    text = all_text(messages)
    assert "Liberty" in text
    assert "24 hours" in text or "day and night" in text


def test_advice_line_from_settings(kb_settings, monkeypatch):
    from bot import settings as settings_module

    monkeypatch.setenv("ADVICE_LINE_PHONE", "0300 000 0000")
    monkeypatch.setenv("ADVICE_LINE_HOURS", "mon-sun 00:00-23:59")
    settings_module.get_settings.cache_clear()
    messages, _ = run(ActionAdviceLine(), make_tracker())
    assert "0300 000 0000" in all_text(messages)


def test_handoff_is_explained_before_anything_is_kept(settings):
    messages, events = run(ActionExplainHandoff(), make_tracker("/request_human", "request_human"))
    text = all_text(messages)
    assert "Home Office" in text and "never" in text
    assert f"{settings.handoff_retention_days} days" in text
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/affirm", "/deny"]
    assert events == []


def test_handoff_questions_fit_the_way_of_contact():
    assert handoff_questions(None) == ["contact_method"]
    assert handoff_questions("self") == ["contact_method"]
    assert handoff_questions("email") == ["contact_method", "contact_detail", "safe_times"]
    assert handoff_questions("phone")[-2:] == ["may_leave_message", "may_say_who"]


def test_contact_detail_is_encrypted_the_moment_it_arrives(settings, monkeypatch):
    from cryptography.fernet import Fernet

    from bot import settings as settings_module
    from bot.privacy.crypto import decrypt

    monkeypatch.setenv("SAFE_REPORT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    settings_module.get_settings.cache_clear()
    tracker = make_tracker("07700 900123", "inform", slots={"contact_method": "phone"})
    result = ValidateHandoffForm().validate_contact_detail("07700 900123", CollectingDispatcher(), tracker, {})
    assert "07700" not in result["contact_detail"]
    assert decrypt(result["contact_detail"]) == "07700 900123"
    assert result["contact_detail_masked"].endswith("123")
