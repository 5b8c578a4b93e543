"""Property-based tests (hypothesis): the text-handling functions never crash on any input.

Unit level and fast: no servers. Each property records how many examples it ran in
docs/RELIABILITY.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_report import record, section_fixture

_report = section_fixture("properties")

EXAMPLES = 150
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Text that looks like what people type, plus the shapes that break parsers: personal data,
# FTS5/SQL syntax, markup, control characters, odd Unicode.
FRAGMENTS = [
    "my number is 07700 900123", "SW1A 1AA", "QQ 12 34 56 C", "born 01/02/1990",
    "passport 123456789", "a@b.co.uk", "my name is Anna", "12 High Street, Leeds",
    "\" OR 1=1 --", "NEAR(", "*", "\"unbalanced", "AND OR NOT", "col:term", "^start",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\x00\x1b[31m", "\u202e",
    "مرحبا", "שלום", "Ｆｕｌｌｗｉｄｔｈ", "e\u0301", "\u00e9", "🙂🙂", "\ud7ff", "\U0010ffff",
    "[PHONE]", "[POSTCODE]", "{{contact:police_999}}", "999", "he has a knife",
]
texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=12).map(" ".join),
)

PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")

_counts: dict[str, int] = {}


def _count(name: str) -> None:
    _counts[name] = _counts.get(name, 0) + 1


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    from bot.knowledge import KnowledgeBase, build_knowledge_base
    from bot.settings import PROJECT_ROOT

    path = build_knowledge_base(PROJECT_ROOT / "knowledge",
                                Path(tmp_path_factory.mktemp("kbprop")) / "knowledge.db")
    return KnowledgeBase.open(path)


@FAST
@given(texts)
def test_redact_never_raises_is_idempotent_and_bounded(text):
    from bot.privacy.pii import redact

    once = redact(text)
    assert isinstance(once, str)
    twice = redact(once)
    # "Idempotent-ish": a second pass never undoes a redaction (every placeholder stays)
    # and never brings back text. Strict equality does not always hold (the record below
    # counts it); the examples hypothesis found are fixed and kept as tests below.
    assert len(PLACEHOLDER.findall(twice)) >= len(PLACEHOLDER.findall(once))
    assert len(twice) <= len(once) + sum(len(m) for m in PLACEHOLDER.findall(twice))
    if once == twice:
        _count("redact_equal")
    if not PLACEHOLDER.search(text):
        added = sum(len(m) for m in PLACEHOLDER.findall(once))
        assert len(once) <= len(text) + added
    _count("redact")


@pytest.mark.parametrize("text", ["=Aa:I", "=t\x8a\U0001db0e\u00aeA:J/"])
def test_redact_twice_equals_once_on_found_examples(text):
    """Examples hypothesis found: a second pass used to swallow a placeholder into a name
    ("[NAME]:I" -> "[[NAME]"); findings now never overlap a placeholder."""
    from bot.privacy.pii import redact

    once = redact(text)
    assert redact(once) == once


def test_redact_record():
    record("properties", "bot.privacy.pii.redact",
           "random text and personal-data/SQL/markup/Unicode fragments: never raises; a second "
           "pass keeps every placeholder and adds no text; never longer than input + placeholders",
           _counts.get("redact", 0),
           f"ok; redact(redact(x)) == redact(x) held for {_counts.get('redact_equal', 0)} of "
           f"{_counts.get('redact', 0)}. Not strictly idempotent: hypothesis found "
           "'=Aa:I' -> '[NAME]:I' -> '[[NAME]' (a placeholder re-read as part of a name; "
           "nothing is revealed); those examples are fixed and kept as tests")


@FAST
@given(text=texts, situations=st.lists(st.sampled_from(
    ["domestic_abuse", "witness", "immigration_fear", "x\"y", ""]), max_size=3),
    nation=st.sampled_from([None, "scotland", "england-wales", "nowhere", "\" OR 1"]),
    limit=st.integers(min_value=-5, max_value=500))
def test_kb_search_never_raises(kb, text, situations, nation, limit):
    results = kb.search(text, situations=situations, nation=nation, limit=limit)
    assert isinstance(results, list)
    assert len(results) <= max(0, min(limit, 100))
    _count("search")


def test_kb_search_record():
    record("properties", "bot.knowledge.KnowledgeBase.search",
           "any text (FTS5 syntax, quotes, NEAR(, *, Unicode) with random situations, "
           "nations and limits, on a KB built from knowledge/ into tmp: never raises",
           _counts.get("search", 0), "ok")


@FAST
@given(texts)
def test_detect_danger_never_raises(text):
    from bot.nlp.safety_net import DangerSignal, detect_danger

    signal = detect_danger(text)
    assert signal is None or isinstance(signal, DangerSignal)
    _count("danger")


def test_detect_danger_record():
    record("properties", "bot.nlp.safety_net.detect_danger", "any text: never raises",
           _counts.get("danger", 0), "ok")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
entities = st.lists(st.fixed_dictionaries(
    {"entity": st.sampled_from(["role", "nation", "what_happened", "x", ""]), "value": json_values},
    optional={"start": st.integers(), "end": st.integers(), "text": texts}), max_size=3)
events = st.one_of(
    st.fixed_dictionaries({"event": st.just("user")}, optional={
        "text": st.one_of(st.none(), texts), "metadata": json_values,
        "parse_data": st.fixed_dictionaries({}, optional={
            "text": st.one_of(st.none(), texts), "entities": entities,
            "intent": json_values, "metadata": json_values}),
    }),
    st.fixed_dictionaries({"event": st.just("slot"),
                           "name": st.sampled_from(["contact_detail", "safe_times", "nation",
                                                    "role", "anything", ""]),
                           "value": json_values}),
    st.fixed_dictionaries({"event": st.just("bot")},
                          optional={"text": st.one_of(st.none(), texts), "data": json_values,
                                    "metadata": json_values}),
    st.fixed_dictionaries({"event": st.sampled_from(["entities", "session_started", "action",
                                                     "user_featurization", "weird"])},
                          optional={"entities": entities, "metadata": json_values,
                                    "name": json_values}),
)


@FAST
@given(events, st.booleans())
def test_redact_event_never_raises(event, is_contact_detail):
    from bot.privacy.redaction import redact_event

    before = repr(event)
    out = redact_event(event, is_contact_detail=is_contact_detail)
    assert isinstance(out, dict)
    assert repr(event) == before  # the input is not changed
    if event.get("event") == "user" and is_contact_detail:
        assert out["text"] == "[CONTACT_DETAIL]"
    _count("event")


def test_redact_event_record():
    record("properties", "bot.privacy.redaction.redact_event",
           "arbitrary user/slot/bot/entities/other event dicts with nested JSON values: "
           "never raises, never changes its input, contact-detail answers replaced whole",
           _counts.get("event", 0), "ok")
