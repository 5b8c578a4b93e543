"""Unit tests of the personal-data detector (bot/privacy/pii.py), on examples written here.

The independent test set is tests/data/pii_cases.yml (see tests/test_pii_eval.py).
"""

from __future__ import annotations

import dataclasses
import socket
import statistics
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.privacy import pii
from bot.privacy.pii import PLACEHOLDERS, Finding, find_personal_data, redact

ROOT = Path(__file__).resolve().parents[1]


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in find_personal_data(text)]


def types_of(text: str) -> set[str]:
    return {f.type for f in find_personal_data(text)}


# ------------------------------------------------------------------------------ the API


def test_placeholders_are_the_agreed_ones():
    assert PLACEHOLDERS == {
        "NAME": "[NAME]",
        "PHONE": "[PHONE]",
        "EMAIL": "[EMAIL]",
        "POSTCODE": "[POSTCODE]",
        "ADDRESS": "[ADDRESS]",
        "DOB": "[DATE_OF_BIRTH]",
        "PASSPORT": "[PASSPORT]",
        "NINO": "[NI_NUMBER]",
        "HOME_OFFICE_REF": "[HOME_OFFICE_REF]",
        "NHS_NUMBER": "[NHS_NUMBER]",
        "CARD": "[CARD_NUMBER]",
        "IP_ADDRESS": "[IP_ADDRESS]",
    }


def test_finding_is_a_frozen_dataclass_with_offsets():
    text = "text me on 07700 900456 please"
    (finding,) = find_personal_data(text)
    assert finding == Finding("PHONE", 11, 23, "07700 900456")
    assert text[finding.start:finding.end] == finding.text
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.type = "NAME"  # type: ignore[misc]


def test_redact_replaces_each_finding_with_its_placeholder():
    assert (
        redact("I'm Hoa Pham, 07700 900219, hoa.p@example.net, DOB 03/04/1992")
        == "I'm [NAME], [PHONE], [EMAIL], DOB [DATE_OF_BIRTH]"
    )


def test_redact_keeps_text_without_personal_data():
    text = "Can the police share my details with the Home Office?"
    assert redact(text) == text


# ---------------------------------------------------------------------------- each type


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ring me on 07700 900 918 tonight", ("PHONE", "07700 900 918")),
        ("my mobile is 07700900303", ("PHONE", "07700900303")),
        ("home phone (0161) 496 0123", ("PHONE", "(0161) 496 0123")),
        ("my Leicester number is 0116 496 0991", ("PHONE", "0116 496 0991")),
        ("my sister in Lagos: +234 802 555 0199", ("PHONE", "+234 802 555 0199")),
        ("call +44 7700 900 004", ("PHONE", "+44 7700 900 004")),
        ("email fatou.diallo77@example.com", ("EMAIL", "fatou.diallo77@example.com")),
        ("the postcode is LS6 2QT", ("POSTCODE", "LS6 2QT")),
        ("we stay near m11ae", ("POSTCODE", "m11ae")),
        ("my postcode is E17", ("POSTCODE", "E17")),
        ("my NI number is PX 43 12 98 B", ("NINO", "PX 43 12 98 B")),
        ("national insurance no: ZX120394", ("NINO", "ZX120394")),
        ("my passport number is 309876541", ("PASSPORT", "309876541")),
        ("pasport no. EC4412390 (Philippines)", ("PASSPORT", "EC4412390")),
        ("my Home Office reference is T4455667", ("HOME_OFFICE_REF", "T4455667")),
        ("HO ref: D7654321/3", ("HOME_OFFICE_REF", "D7654321/3")),
        ("my UAN is 2468-1357-9024-6813", ("HOME_OFFICE_REF", "2468-1357-9024-6813")),
        ("application GWF061234987", ("HOME_OFFICE_REF", "GWF061234987")),
        ("date of birth 09/10/1987", ("DOB", "09/10/1987")),
        ("I was born on 30th December 1999", ("DOB", "30th December 1999")),
        ("my NHS number is 450 557 7104", ("NHS_NUMBER", "450 557 7104")),
        ("he uses my card 4242 4242 4242 4242", ("CARD", "4242 4242 4242 4242")),
        ("he logs in from 198.51.100.23", ("IP_ADDRESS", "198.51.100.23")),
        ("or from fe80::1ff:fe23:4567:890a", ("IP_ADDRESS", "fe80::1ff:fe23:4567:890a")),
        ("I live at 14 Birch Grove", ("ADDRESS", "14 Birch Grove")),
        ("she lives on Tanners Lane", ("ADDRESS", "Tanners Lane")),
        ("flat 3/2, 70 Dumbarton Road West", ("ADDRESS", "flat 3/2, 70 Dumbarton Road West")),
    ],
)
def test_each_type_is_found(text, expected):
    assert expected in found(text)


def test_address_takes_in_the_town_and_leaves_the_postcode():
    assert found("it's 5 Mill Lane, Sheffield S1 2HE") == [
        ("ADDRESS", "5 Mill Lane, Sheffield"),
        ("POSTCODE", "S1 2HE"),
    ]


def test_street_numbers_in_ordinary_sentences_are_not_addresses():
    assert "ADDRESS" not in types_of("I work 12 hours a day, 10 mins walk from the park")
    assert "ADDRESS" not in types_of("we were 2 kids in the park")


def test_context_decides_between_lookalike_numbers():
    # The same shape, three meanings.
    assert found("passport A1234567") == [("PASSPORT", "A1234567")]
    assert found("home office ref A1234567") == [("HOME_OFFICE_REF", "A1234567")]
    assert found("the order number was A1234567") == []


def test_dates_without_birth_context_are_not_dates_of_birth():
    assert "DOB" not in types_of("he hit me on 12/03/2024 at 10pm")


def test_checksums_are_used():
    assert "NHS_NUMBER" not in types_of("NHS number 123 456 7890")  # fails mod-11
    assert "CARD" not in types_of("card 4242 4242 4242 4241")  # fails Luhn


# ---------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "text, name",
    [
        ("my husband ahmed hits me", "ahmed"),
        ("its me luz", "luz"),
        ("my name is Kwabena Owusu", "Kwabena Owusu"),
        ("i am priya, i need help", "priya"),
        ("my boss Wang Lei keeps our passports", "Wang Lei"),
        ("my ex Radu Popescu is outside", "Radu Popescu"),
        ("the landlord, Mrs Chowdhury, took the deposit", "Mrs Chowdhury"),
        ("my wife Yasmin Haddad shouts at me", "Yasmin Haddad"),
        ("this is Joaquín from yesterday", "Joaquín"),
        ("please ask for Oluwaseun", "Oluwaseun"),
        ("I saw Tomasz Nowak hit her", "Tomasz Nowak"),
        ("her name is nguyen thi mai", "nguyen thi mai"),
        ("Siobhan here, can you call me", "Siobhan"),
        ("my daughter is friends with Ama Boateng", "Ama Boateng"),
    ],
)
def test_names_are_found(text, name):
    assert ("NAME", name) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "I live in London but work in Glasgow",
        "I came from Nigeria last year",
        "Will the Home Office find out?",
        "The NHS charged me for the hospital",
        "I called Women's Aid on Monday",
        "Refuge and Victim Support both helped",
        "it happened in March",
        "see you on Friday",
        "call me back tomorrow",
        "ask for help",
        "this is hard",
        "I'm scared",
        "Hope you can help",
        "Karma Nirvana said to call the police",
        "My GP said I can see a doctor without papers",
    ],
)
def test_places_organisations_days_and_words_are_not_names(text):
    assert "NAME" not in types_of(text)


# ------------------------------------------------------------------- helplines allowed


@pytest.mark.parametrize(
    "text",
    [
        "call 999 now",
        "press 55 when they answer",
        "phone 101 if it is not an emergency",
        "call 111 for the NHS",
        "textphone 18000",
        "Samaritans 116 123",
        "any 0800 number is free, like 0800 555 111",
        "the helpline is 0808 2000 247",
        "UK Visas and Immigration 0300 790 6268",
    ],
)
def test_helpline_and_emergency_numbers_are_not_flagged(text):
    assert "PHONE" not in types_of(text)


def test_every_phone_in_contacts_yml_is_allowed():
    path = ROOT / "knowledge" / "contacts.yml"
    if not path.exists():
        pytest.skip("knowledge/contacts.yml not written yet")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    phones = [
        str(entry["phone"]) for entry in data.values()
        if isinstance(entry, dict) and entry.get("phone")
    ]
    assert phones
    for phone in phones:
        assert "PHONE" not in types_of(f"you can call {phone} for help"), phone


# ------------------------------------------------------------------ robustness and fallback


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x01\x02", "\u202eRTL override 07700 900123", "مرحبا اسمي أمينة",
     "😀" * 500, "\n" * 1000, "a" * 200_000, None, 12345],
)
def test_odd_input_never_raises(text):
    findings = find_personal_data(text)  # type: ignore[arg-type]
    assert isinstance(findings, list)
    assert isinstance(redact(text), str)  # type: ignore[arg-type]


def test_ten_megabytes_use_the_regex_layer_and_still_find_everything():
    # Ordinary chat text with personal data every few hundred characters, so some of it
    # straddles the regex layer's chunk boundaries.
    filler = "he said he would tell the home office if I leave the house again. " * 5
    block = filler + "my number is 07700 900123 and I live at 12 High Street SW1A 1AA. "
    text = (block * (10_000_000 // len(block) + 1))[:10_000_000]
    start = time.perf_counter()
    findings = find_personal_data(text)
    elapsed = time.perf_counter() - start
    assert {f.type for f in findings} >= {"PHONE", "ADDRESS", "POSTCODE"}
    assert sum(f.type == "PHONE" for f in findings) == text.count("07700 900123")
    assert elapsed < 300


def test_falls_back_to_the_regex_layer_when_the_engine_fails(monkeypatch):
    class Broken:
        def analyze(self, text):
            raise RuntimeError("boom")

    monkeypatch.setattr(pii, "_engine", Broken())
    assert ("PHONE", "07700 900123") in found("call me on 07700 900123")
    assert ("NAME", "Amina") in found("my name is Amina")
    assert redact("email me at x.y@example.com") == "email me at [EMAIL]"


def test_redact_fails_closed(monkeypatch):
    def explode(text):
        raise RuntimeError("boom")

    monkeypatch.setattr(pii, "_find", explode)
    assert redact("my name is Amina") == pii.REDACTION_FAILED
    assert find_personal_data("my name is Amina") == []


def test_no_download_and_no_network_when_building_the_engine(monkeypatch):
    import spacy.cli
    import tldextract

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(spacy.cli, "download", refuse)
    engine = pii._Engine()
    hits = engine.analyze("write to amina@example.co.uk")
    assert [h.type for h in hits] == ["EMAIL"]
    assert tldextract.tldextract.TLD_EXTRACTOR.suffix_list_urls == ()


_ALPHABET = st.characters(blacklist_categories=("Cs",))
_PII_ISH = st.text(
    alphabet=list("0123456789 +-()/.,:@#abcdefAZmyname is\n\t\u202e\u200fé😀ابت"), max_size=300
)


def _check_findings(text: str) -> None:
    findings = find_personal_data(text)
    previous_end = 0
    for f in findings:
        assert f.type in PLACEHOLDERS
        assert 0 <= f.start < f.end <= len(text)
        assert text[f.start:f.end] == f.text
        assert f.start >= previous_end  # sorted, no overlaps
        previous_end = f.end
    assert isinstance(redact(text), str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=500))
def test_property_any_text_gives_valid_findings(text):
    _check_findings(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PII_ISH)
def test_property_number_like_text_gives_valid_findings(text):
    _check_findings(text)


# --------------------------------------------------------------------------------- speed


def test_median_time_for_a_100_char_message():
    text = "hi its me luz, my husband ahmed took my passport, call me on 07700 900123 after 6pm"
    text = (text + " please help")[:100]
    for _ in range(20):
        find_personal_data(text)
    times = []
    for _ in range(200):
        start = time.perf_counter()
        find_personal_data(text)
        times.append(time.perf_counter() - start)
    median_ms = statistics.median(times) * 1000
    print(f"\nfind_personal_data median {median_ms:.2f} ms for {len(text)} chars")
    # The target is < 5 ms on the project's 2-core machine; the bound here is loose so a busy
    # CI machine does not fail the suite.
    assert median_ms < 25


# ------------------------------------------------------------------------------ pipeline


def test_pipeline_has_its_components_and_entry_point():
    from bot.nlp import pii_pipeline

    engine = pii._get_engine()
    assert engine is not None
    nlp = engine.analyzer.nlp_engine.nlp["en"]
    assert nlp.pipe_names == [
        "safe_report_name_lexicon", "entity_ruler", "safe_report_name_cues", "ner",
        "safe_report_name_context",
    ]
    assert pii_pipeline.main([]) == 2  # usage


def test_training_data_is_deterministic():
    from bot.nlp import pii_pipeline

    lexicon = pii_pipeline.load_lexicon()
    assert pii_pipeline.training_examples(lexicon)[:50] == pii_pipeline.training_examples(lexicon)[:50]
