"""Find and redact personal data in chat messages.

Public API (used by `bot.privacy.redaction` and others):

    find_personal_data(text) -> list[Finding]
    redact(text) -> str
    PLACEHOLDERS: type -> placeholder

Two layers:

* The **regex layer** (this module, no Presidio, no spaCy): UK phone numbers via
  `phonenumbers` (region "GB"), postcodes, National Insurance numbers, passport numbers,
  Home Office references and dates of birth *in context*, UK street addresses, and simple
  e-mail / card / IP / NHS detectors. It is also the fall-back when the full engine fails.
* The **full engine**: Presidio's `AnalyzerEngine` with its e-mail, credit-card (Luhn), IP
  and UK NHS (mod-11) recognizers, our regex-layer detectors wrapped as Presidio
  recognizers, and names from our own spaCy pipeline (`bot/nlp/pii_pipeline.py`).

Presidio here runs on a blank-based spaCy pipeline, so its context-word boosting is inert
(it needs lemmas). Every detector that depends on context ("passport number ...") checks
the context itself, and every pattern has a real base score.
"""

from __future__ import annotations

import os

# Before anything imports tldextract (Presidio's e-mail recognizer does): an empty list of
# URLs makes it use its bundled Public Suffix List instead of fetching one at run time.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import bisect  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

import phonenumbers  # noqa: E402

log = logging.getLogger(__name__)

PLACEHOLDERS: dict[str, str] = {
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

# When two findings overlap, the higher score wins; on a tie, the earlier type here. Context-
# confirmed identifiers come first: "UAN 1234-5678-9012-3456" is a Home Office reference
# even if the digits happen to pass the card checksum.
TYPE_PRIORITY = [
    "HOME_OFFICE_REF", "PASSPORT", "NINO", "DOB", "NHS_NUMBER", "CARD", "EMAIL", "IP_ADDRESS",
    "PHONE", "ADDRESS", "POSTCODE", "NAME",
]

# Above this size the spaCy/Presidio engine is skipped: messages are capped far below it
# (MAX_MESSAGE_CHARS, 2000 by default), so such input is abnormal and gets the regex layer.
MAX_ENGINE_CHARS = 20_000
# The regex layer works through very long text in pieces, overlapping so nothing that
# straddles a cut is lost.
CHUNK_CHARS = 20_000
CHUNK_OVERLAP = 200

NAMES_DIR = Path(__file__).resolve().parent / "names"


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Hit:
    """A detector's candidate before overlaps are resolved."""

    type: str
    start: int
    end: int
    score: float


# ============================================================================ regex layer

_I = re.IGNORECASE
_EDGE_L = r"(?<![A-Za-z0-9])"
_EDGE_R = r"(?![A-Za-z0-9])"

MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)

# A keyword, then a short window in which the value must appear. The window ends at a
# sentence end or at a keyword of another kind, so "passport ... and my phone is 07..." does
# not read the phone number as the passport number.
_KEYWORDS_BY_TYPE = {
    "PHONE": r"phone|mobile|tel|call|text|whats ?app",
    "EMAIL": r"e-?mail",
    "POSTCODE": r"post ?code",
    "ADDRESS": r"address",
    "NHS_NUMBER": r"nhs",
    "NINO": r"national insurance|ni (?:number|no)",
    "DOB": r"born|birth|birthday|dob|d\.o\.b",
    "PASSPORT": r"passport|pasport",
    "HOME_OFFICE_REF": r"home office|reference|ref|brp|uan|share code",
    "CARD": r"card",
}
_OTHER_KEYWORDS = {
    type_: re.compile(
        r"\b(?:" + "|".join(v for t, v in _KEYWORDS_BY_TYPE.items() if t != type_) + r")\b", _I
    )
    for type_ in PLACEHOLDERS
}
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")


def _window(text: str, start: int, size: int, type_: str) -> tuple[int, int]:
    end = min(len(text), start + size)
    # Never cut a word in two: the value regexes would match half a number.
    while end < len(text) and not text[end].isspace():
        end += 1
    segment = text[start:end]
    cut = len(segment)
    sentence = _SENTENCE_END.search(segment)
    if sentence:
        cut = min(cut, sentence.start())
    other = _OTHER_KEYWORDS[type_].search(segment)
    if other:
        cut = min(cut, other.start())
    return start, start + cut


def _in_context(
    text: str,
    keyword: re.Pattern,
    value: re.Pattern,
    type_: str,
    score: float,
    after: int = 45,
    before: int = 0,
    first_only: bool = False,
) -> list[_Hit]:
    """Values found within `after` chars after a keyword (or `before` chars before one)."""
    hits: list[_Hit] = []
    for kw in keyword.finditer(text):
        lo, hi = _window(text, kw.end(), after, type_)
        for match in value.finditer(text, lo, hi):
            hits.append(_Hit(type_, match.start(), match.end(), score))
            if first_only:
                break
        if before:
            lo = max(0, kw.start() - before)
            for match in value.finditer(text, lo, kw.start()):
                # Only a value that ends just before the keyword: "123456789 is my passport".
                # It scores a little lower, so a keyword right before a value wins:
                # "passport 987654321 and my BRP" is a passport number.
                gap = text[match.end():kw.start()]
                if len(gap) <= 25 and not _SENTENCE_END.search(gap):
                    hits.append(_Hit(type_, match.start(), match.end(), score - 0.1))
    return hits


# ---------------------------------------------------------------------------- postcodes

# Position-aware UK postcode (letters that can occur in each place), any case, with or
# without the space: "SW1A 1AA", "sw1a1aa", "M1 1AE", "B33 8TH".
_POSTCODE_CORE = (
    r"(?:GIR ?0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|"
    r"[A-PR-UWYZ][0-9][A-HJKPSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"
    r"\s?[0-9][ABD-HJLNP-UW-Z]{2})"
)
POSTCODE_RE = re.compile(_EDGE_L + _POSTCODE_CORE + _EDGE_R, _I)
_OUTWARD = r"(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9A-Z]?|[A-PR-UWYZ][0-9][A-Z])"
_POSTCODE_KEYWORD = re.compile(r"\bpost\s?code\b", _I)
_PARTIAL_POSTCODE = re.compile(_EDGE_L + _OUTWARD + r"(?:\s?[0-9](?:[A-Z]{1,2})?)?" + _EDGE_R, _I)


def detect_postcodes(text: str) -> list[_Hit]:
    hits = [_Hit("POSTCODE", m.start(), m.end(), 0.85) for m in POSTCODE_RE.finditer(text)]
    # After the word "postcode", a district alone ("E17") still narrows down where someone
    # lives.
    hits += _in_context(text, _POSTCODE_KEYWORD, _PARTIAL_POSTCODE, "POSTCODE", 0.8, after=20,
                        first_only=True)
    return hits


# ------------------------------------------------------------ National Insurance numbers

NINO_RE = re.compile(
    _EDGE_L + r"[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]" + _EDGE_R, _I
)
_NINO_VALID_PREFIX = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]", _I)
_NINO_KEYWORD = re.compile(
    r"\b(?:national\s+insurance(?:\s+(?:number|no\.?|num))?|n\.?i\.?\s*(?:number|no\.?|num)|"
    r"nino|ni#)\b",
    _I,
)
# In context the final letter is often left off: "NI number AB123456".
_NINO_IN_CONTEXT = re.compile(_EDGE_L + r"[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}(?:\s?[A-D])?" + _EDGE_R, _I)


def detect_nino(text: str) -> list[_Hit]:
    hits = []
    for m in NINO_RE.finditer(text):
        # Format alone is distinctive; valid prefixes score higher. HMRC's own examples use
        # the never-issued prefix QQ, and people copy them, so invalid prefixes still count.
        score = 0.9 if _NINO_VALID_PREFIX.match(m.group()) else 0.75
        hits.append(_Hit("NINO", m.start(), m.end(), score))
    hits += _in_context(text, _NINO_KEYWORD, _NINO_IN_CONTEXT, "NINO", 1.0, after=40)
    return hits


# ------------------------------------------------------------------------- passports

# Typed in a hurry too: "pasport", "psssport"; and in the languages users often write in.
_PASSPORT_KEYWORD = re.compile(
    r"\b(?:pa?s{1,3}\s?p+orts?|pas+p?ort|passaporto?|pasaporte|passeport|paszport|pasport)\b"
    r"(?:\s*[,:\-]?\s*(?:number|no\.?|nr\.?|num|n°|#)(?![A-Za-z]))?",
    _I,
)
# UK passports are 9 digits; others mix letters and digits: A12345678, P1234567A, EC1234567,
# French 19FV24836, German C4F7K2M91. So: 6-10 letters/digits with at least 3 digits.
_PASSPORT_VALUE = re.compile(
    _EDGE_L + r"(?:(?=(?:[A-Z]*\d){3})[A-Z0-9]{6,10}|\d{3}\s\d{3}\s\d{3})" + _EDGE_R, _I
)


def detect_passports(text: str) -> list[_Hit]:
    return _in_context(text, _PASSPORT_KEYWORD, _PASSPORT_VALUE, "PASSPORT", 1.0, after=45,
                       before=30)


# ------------------------------------------------------------- Home Office references

# Keywords that can only mean the Home Office / immigration system.
_HO_STRONG_KEYWORD = re.compile(
    r"\b(?:home\s*office|h\.?o\.?\s*(?:ref(?:erence)?|number|no\.?)|ukvi|uan|"
    r"unique\s+application(?:\s+number)?|gwf|brp|biometric\s+residence\s+permit|"
    r"residence\s+(?:permit|card)|asylum|immigration|visa|cid|port\s+ref(?:erence)?|"
    r"share\s*code|e-?visa|arc\s+(?:card|number))\b",
    _I,
)
# Words that could be about any case; only Home Office formats count after them.
_HO_WEAK_KEYWORD = re.compile(
    r"\b(?:ref(?:erence)?|case\s+(?:number|no\.?|id|ref)|application\s+(?:number|no\.?|ref))\b",
    _I,
)
# Person ID "A1234567" (optionally "/1"), UAN "1234-5678-9012-3456".
_HO_FORMAT = (
    r"[A-Z]\d{7}(?:/\d{1,3})?|\d{4}-\d{4}-\d{4}-\d{4}(?:/\d{1,3})?|\d{4}\s\d{4}\s\d{4}\s\d{4}"
)
_HO_FORMAT_RE = re.compile(_EDGE_L + r"(?:" + _HO_FORMAT + r")" + _EDGE_R, _I)
# After a strong keyword also: GWF numbers, BRP numbers (ZU1234567) and other references
# made mostly of digits.
_HO_ANY_RE = re.compile(
    _EDGE_L + r"(?:" + _HO_FORMAT + r"|GWF\d{9}|[A-Z]{2}[0-9X]\d{6}|[A-Z]{0,3}\d{6,10}(?:/\d{1,3})?)"
    + _EDGE_R,
    _I,
)
# eVisa share codes: nine letters and digits in threes, "W7X 4TR 9PK".
_SHARE_CODE_KEYWORD = re.compile(r"\bshare\s*code\b", _I)
_SHARE_CODE_RE = re.compile(
    _EDGE_L + r"(?=[A-Z]*\d)[A-Z0-9]{3}[ -]?[A-Z0-9]{3}[ -]?[A-Z0-9]{3}" + _EDGE_R, _I
)
# Formats distinctive enough on their own.
_HO_STANDALONE_RE = re.compile(
    _EDGE_L + r"(?:GWF\d{9}|[A-Z]\d{7}/\d{1,3})" + _EDGE_R, _I
)


def detect_home_office_refs(text: str) -> list[_Hit]:
    hits = _in_context(text, _HO_STRONG_KEYWORD, _HO_ANY_RE, "HOME_OFFICE_REF", 1.0, after=50,
                       before=30)
    hits += _in_context(text, _HO_WEAK_KEYWORD, _HO_FORMAT_RE, "HOME_OFFICE_REF", 1.0, after=40)
    hits += _in_context(text, _SHARE_CODE_KEYWORD, _SHARE_CODE_RE, "HOME_OFFICE_REF", 1.0,
                        after=25, first_only=True)
    hits += [_Hit("HOME_OFFICE_REF", m.start(), m.end(), 0.85)
             for m in _HO_STANDALONE_RE.finditer(text)]
    return hits


# --------------------------------------------------------------------- dates of birth

_DOB_KEYWORD = re.compile(
    r"\b(?:date\s+of\s+birth|birth\s*date|d\.?o\.?b\.?|born(?:\s+on)?|birthday(?:\s+is)?)\b", _I
)
_ORD = r"(?:st|nd|rd|th)?"
_DATE_VALUE = re.compile(
    _EDGE_L + r"(?:"
    r"\d{1,2}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?(?:\d{4}|\d{2})"  # 12/03/1990, 3.4.85
    r"|\d{4}-\d{1,2}-\d{1,2}"  # 1990-03-12
    r"|\d{1,2}" + _ORD + r"(?:\s+of)?[\s\-]+" + MONTHS + r"(?:,?[\s\-]+'?\d{2,4})?"  # 3rd March 1990
    r"|" + MONTHS + r"\s+\d{1,2}" + _ORD + r"(?:,?\s+\d{4})?"  # March 3rd, 1990
    r"|" + MONTHS + r",?\s+\d{4}"  # March 1990
    r")" + _EDGE_R,
    _I,
)
# "born in 1988": a year alone is part of a date of birth only right after "born (in)".
_BORN_YEAR = re.compile(r"\bborn\s+in\s+((?:19|20)\d{2})\b", _I)


def detect_dob(text: str) -> list[_Hit]:
    hits = _in_context(text, _DOB_KEYWORD, _DATE_VALUE, "DOB", 1.0, after=40, first_only=True)
    hits += [_Hit("DOB", m.start(1), m.end(1), 0.9) for m in _BORN_YEAR.finditer(text)]
    return hits


# ---------------------------------------------------------------------- street addresses

_STREET_TYPES = (
    r"street|st|road|rd|avenue|ave|lane|ln|close|cl|drive|dr|way|court|ct|crescent|cres|"
    r"place|pl|grove|gr|gardens|gdns|terrace|terr|hill|park|square|sq|row|walk|mews|rise|"
    r"parade|green|estate|house|tower|towers|wharf|quay|yard|gate|vale|fields|croft|heights|"
    r"boulevard|broadway|circus|embankment|approach|mount|villas|cottages|buildings|"
    r"mansions|court|drove|chase|wynd|brae|loan|gait|crossing"
)
# Words that never name a street, so "2 kids in the park" or "10 mins walk" is no address.
_NOT_STREET_WORDS = {
    "a", "an", "the", "in", "on", "at", "of", "to", "and", "or", "my", "his", "her", "our",
    "their", "is", "was", "for", "with", "from", "by", "mins", "minutes", "hours", "hrs",
    "days", "weeks", "months", "years", "people", "men", "women", "kids", "children", "times",
    "pounds", "miles", "km", "metres", "meters", "steps", "floors", "stops", "it", "we",
    "they", "he", "she", "you", "i", "me", "us", "them", "am", "pm", "big", "small",
}
# "Flat 3", "flat 2b", and Glasgow's floor/door "flat 2/1".
_FLAT = r"(?:(?i:flat|apartment|apt|unit|room|studio)\s*\d{1,4}(?:/\d{1,2})?[A-Za-z]?\s*,?\s*)?"
_HOUSE_NO = r"\d{1,4}[A-Z]?(?:\s?-\s?\d{1,4}[A-Z]?)?\s*,?\s+"
_STREET_WORD = r"[A-Za-zÀ-ÿ'’.\-]+"
_STREET = (
    r"(?P<words>(?:" + _STREET_WORD + r"\s+){1,3}?)(?P<kind>" + _STREET_TYPES + r")\.?" + _EDGE_R
    # "Paisley Road West", "Upper Street North"
    + r"(?:\s+(?:North|South|East|West|Upper|Lower)\b)?"
)
ADDRESS_RE = re.compile(_EDGE_L + r"(?P<addr>" + _FLAT + _HOUSE_NO + _STREET + r")", _I)
# No house number, but a clear cue: "I live on Mill Lane", "address is Flat 2, Oak House".
_ADDRESS_CUE = re.compile(
    r"\b(?:live[sd]?\s+(?:on|at|in)|living\s+(?:on|at|in)|address\s*(?:is|:)?|stay(?:s|ing)?\s+at|"
    r"moved\s+to|lives\s+(?:on|at))\s+",
    _I,
)
_CUED_STREET = re.compile(
    r"(?P<addr>" + _FLAT + r"(?:the\s+)?" + _STREET + r")", _I
)


@lru_cache(maxsize=1)
def _town_pattern() -> re.Pattern:
    """UK towns and cities from names/places.txt, to extend "12 High Street, Leeds"."""
    try:
        places = [p for p in _read_list(NAMES_DIR / "places.txt") if len(p) > 2]
    except OSError:
        places = []
    alternation = "|".join(re.escape(p) for p in sorted(places, key=len, reverse=True))
    town = r"(?:" + alternation + r")" if alternation else r"(?!x)x"
    return re.compile(r"(?:\s*,\s*|\s+)" + town + _EDGE_R, _I)


_CAPITALISED_BEFORE_POSTCODE = re.compile(
    r"\s*,\s*[A-Z][A-Za-z'\-]+(?:\s+[A-Z][A-Za-z'\-]+)?(?=\s*,?\s*" + _POSTCODE_CORE + r")"
)


def _street_ok(words: str) -> bool:
    parts = [w.strip(".,'’").lower() for w in words.split()]
    return bool(parts) and not any(p in _NOT_STREET_WORDS or not p for p in parts)


def _extend_town(text: str, end: int) -> int:
    """Take in ", Leeds" or ", Anytown" (when a postcode follows) after a street."""
    town = _town_pattern().match(text, end)
    if town:
        return town.end()
    before_postcode = _CAPITALISED_BEFORE_POSTCODE.match(text, end)
    if before_postcode:
        return before_postcode.end()
    return end


# A house number and a street name without a street word, when a town or a postcode
# follows: "88 Kingsway, Cardiff", "4 Acacia, Leeds LS1 4AB".
_NUMBER_AND_NAME = re.compile(
    _EDGE_L + r"(?P<addr>" + _FLAT + _HOUSE_NO + r"(?P<words>[A-Z][A-Za-z'’\-]+(?:\s+[A-Z][A-Za-z'’\-]+){0,2}))"
)


def detect_addresses(text: str) -> list[_Hit]:
    hits = []
    for m in _NUMBER_AND_NAME.finditer(text):
        if not _street_ok(m.group("words")):
            continue
        end = _extend_town(text, m.end("addr"))
        followed_by_postcode = re.match(r"\s*,?\s*" + _POSTCODE_CORE + _EDGE_R, text[end:], _I)
        if end > m.end("addr") or followed_by_postcode:
            hits.append(_Hit("ADDRESS", m.start("addr"), end, 0.85))
    for m in ADDRESS_RE.finditer(text):
        if not _street_ok(m.group("words")):
            continue
        hits.append(_Hit("ADDRESS", m.start("addr"), _extend_town(text, m.end("addr")), 0.9))
    for cue in _ADDRESS_CUE.finditer(text):
        m = _CUED_STREET.match(text, cue.end())
        if not m or not _street_ok(m.group("words")):
            continue
        words = m.group("words").split()
        # Without a house number, a street is only an address when written like a name
        # ("Mill Lane"), or right after "address is".
        if not (all(w[0].isupper() for w in words) or "address" in cue.group().lower()):
            continue
        hits.append(_Hit("ADDRESS", m.start("addr"), _extend_town(text, m.end("addr")), 0.85))
    return hits


# ------------------------------------------------------------------------------ phones

# Numbers people must be able to mention freely: emergency and helpline short codes.
SHORT_CODES = {"999", "112", "101", "111", "55", "18000", "18001", "116123", "116000", "116006",
               "116111", "116117"}
# UK numbers that belong to organisations, never to a person: freephone 080x, non-geographic
# 03/084/087 (charities and public bodies) and premium 09; digits after the leading 0 (the
# national significant number). Six-digit 116xxx/118xxx are services too (116 123), but
# Leicester's 0116 numbers are ten digits and personal.
_ORGANISATION_PREFIXES = ("80", "3", "84", "87", "9")
_SERVICE_PREFIXES = ("116", "118")


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _national_key(value: str) -> str:
    """A comparable key for a phone number: E.164 when it parses, else its digits."""
    try:
        number = phonenumbers.parse(value, "GB")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return _digits(value)


@lru_cache(maxsize=1)
def helpline_allowlist() -> frozenset[str]:
    """Phone numbers of the helplines in knowledge/contacts.yml, plus the short codes."""
    keys = {_national_key(code) for code in SHORT_CODES} | set(SHORT_CODES)
    path = _contacts_path()
    if path is None or not path.exists():
        return frozenset(keys)
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except Exception:  # a broken contacts file must not stop redaction
        log.warning("Could not read %s for the helpline allowlist", path)
        return frozenset(keys)

    def walk(node: object) -> Iterable[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).lower() in {"phone", "phones", "telephone"}:
                    values = value if isinstance(value, list) else [value]
                    yield from (str(v) for v in values if v)
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for phone in walk(data):
        keys.add(_national_key(phone))
        keys.add(_digits(phone))
    return frozenset(k for k in keys if k)


def _contacts_path() -> Path | None:
    try:
        from bot.settings import get_settings

        return get_settings().project_root / "knowledge" / "contacts.yml"
    except Exception:
        return Path(__file__).resolve().parents[2] / "knowledge" / "contacts.yml"


def _is_personal_number(raw: str, number: phonenumbers.PhoneNumber) -> bool:
    digits = _digits(raw)
    stripped = raw.lstrip("( ")
    if stripped.startswith("+") or stripped.startswith("00"):
        if not phonenumbers.is_possible_number(number):
            return False
    elif stripped.startswith("0"):
        # UK national format. Ofcom's drama ranges (07700 900xxx) are not "valid" to
        # libphonenumber but are exactly how people write numbers, so length is the test.
        if not 10 <= len(digits) <= 11:
            return False
    elif not (phonenumbers.is_valid_number(number) and len(digits) >= 11):
        # No 0 or +: only a full valid number with country code ("447911123456"). This
        # keeps NHS numbers, card numbers and references out.
        return False
    national = str(number.national_number)
    if number.country_code == 44 and (
        national.startswith(_ORGANISATION_PREFIXES)
        or (national.startswith(_SERVICE_PREFIXES) and len(national) <= 6)
    ):
        return False
    allow = helpline_allowlist()
    return _national_key(raw) not in allow and digits not in allow


# Runs of digits and the characters written between them. phonenumbers' matcher is slow on
# long text, so it only reads these runs (plus one character either side, which it checks to
# reject numbers glued to letters).
_PHONE_CANDIDATE = re.compile(r"[+(]?\d[\d \t().\-/]{5,60}\d")


def detect_phones(text: str) -> list[_Hit]:
    hits = []
    for candidate in _PHONE_CANDIDATE.finditer(text):
        lo, hi = max(0, candidate.start() - 1), min(len(text), candidate.end() + 1)
        matcher = phonenumbers.PhoneNumberMatcher(
            text[lo:hi], "GB", leniency=phonenumbers.Leniency.POSSIBLE
        )
        for match in matcher:
            if _is_personal_number(match.raw_string, match.number):
                score = 0.8 if match.raw_string.lstrip("( ").startswith(("+", "00")) else 0.75
                hits.append(_Hit("PHONE", lo + match.start, lo + match.end, score))
    return hits


# -------------------------------------------- simple detectors Presidio does better

# Used only in the regex layer (when Presidio is not available or fails).
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_CARD_RE = re.compile(_EDGE_L + r"(?:\d[ -]?){12,18}\d" + _EDGE_R)
_IPV4_RE = re.compile(
    r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"
)
_NHS_RE = re.compile(_EDGE_L + r"\d{3}[ -]?\d{3}[ -]?\d{4}" + _EDGE_R)


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _nhs_ok(digits: str) -> bool:
    if len(digits) != 10:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def detect_simple(text: str) -> list[_Hit]:
    hits = [_Hit("EMAIL", m.start(), m.end(), 1.0) for m in _EMAIL_RE.finditer(text)]
    hits += [_Hit("CARD", m.start(), m.end(), 1.0) for m in _CARD_RE.finditer(text)
             if _luhn_ok(_digits(m.group()))]
    hits += [_Hit("IP_ADDRESS", m.start(), m.end(), 0.6) for m in _IPV4_RE.finditer(text)]
    hits += [_Hit("NHS_NUMBER", m.start(), m.end(), 1.0) for m in _NHS_RE.finditer(text)
             if _nhs_ok(_digits(m.group()))]
    return hits


# A last resort for names when the spaCy pipeline cannot run: strong cues only.
_NAME_CUE_RE = re.compile(
    r"\b(?:my\s+name\s+is|my\s+name's|i\s+am\s+called|call\s+me|i'?m|it'?s\s+me|"
    r"my\s+(?:husband|wife|partner|boss|ex|boyfriend|girlfriend|landlord))\s*,?\s+"
    r"(?P<name>[A-Z][\w'’\-]+(?:\s+[A-Z][\w'’\-]+){0,2})"
)


def detect_names_by_cue(text: str) -> list[_Hit]:
    return [_Hit("NAME", m.start("name"), m.end("name"), 0.7) for m in _NAME_CUE_RE.finditer(text)]


# Presidio's IPv6 pattern stops early on compressed forms ("2001:db8:85a3::8a2e:370:7334");
# candidates checked with the standard library are exact.
_IPV6_CANDIDATE = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
                             r"(?:%[0-9A-Za-z]+)?(?![0-9A-Fa-f:])")


def detect_ipv6(text: str) -> list[_Hit]:
    import ipaddress

    hits = []
    for m in _IPV6_CANDIDATE.finditer(text):
        value = m.group()
        if value.count(":") < 2 or not any(c.isdigit() or c.isalpha() for c in value):
            continue
        try:
            ipaddress.IPv6Address(value.split("%")[0])
        except ValueError:
            continue
        hits.append(_Hit("IP_ADDRESS", m.start(), m.end(), 0.9))
    return hits


# The custom detectors, shared by both layers.
CUSTOM_DETECTORS: dict[str, Callable[[str], list[_Hit]]] = {
    "POSTCODE": detect_postcodes,
    "NINO": detect_nino,
    "PASSPORT": detect_passports,
    "HOME_OFFICE_REF": detect_home_office_refs,
    "DOB": detect_dob,
    "ADDRESS": detect_addresses,
    "PHONE": detect_phones,
    "IP_ADDRESS": detect_ipv6,
}


def regex_layer(text: str) -> list[_Hit]:
    hits: list[_Hit] = []
    for detector in list(CUSTOM_DETECTORS.values()) + [detect_simple, detect_names_by_cue]:
        try:
            hits += detector(text)
        except Exception:  # one broken detector must not cost the others
            log.exception("PII detector %s failed", getattr(detector, "__name__", detector))
    return hits


# ============================================================================ full engine

# Presidio entity names -> ours.
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "UK_NHS": "NHS_NUMBER",
    "PERSON": "NAME",
}


def _read_list(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# Last words that make a capitalised phrase an organisation, law or place, not a person:
# "Crime and Disorder Act", "Leeds City Council", "Unique Application Number".
ORGANISATION_ENDINGS = {
    "act", "office", "service", "services", "council", "centre", "center", "hospital",
    "clinic", "surgery", "school", "university", "college", "police", "court", "station",
    "street", "road", "helpline", "line", "team", "unit", "agency", "trust", "charity", "bank",
    "ltd", "limited", "plc", "group", "company", "church", "mosque", "temple", "gurdwara",
    "project", "programme", "scheme", "number", "card", "permit", "visa", "network", "union",
    "association", "foundation", "society", "partnership", "authority", "department", "ministry",
    "restaurant", "cafe", "shop", "store", "market", "hotel", "salon", "bar", "wash", "app",
}


@dataclass(frozen=True)
class _NameFilter:
    """Drops NAME findings that are places, organisations, days, months or plain words."""

    first_names: frozenset[str]
    never_words: frozenset[str]
    phrases: frozenset[str]

    def keep(self, value: str) -> bool:
        stripped = value.strip(" \t\n.,;:!?\"'()[]")
        lower = stripped.lower()
        if len(stripped) < 2 or not any(c.isalpha() for c in stripped):
            return False
        if any(c.isdigit() for c in stripped) or "@" in stripped:
            return False
        if lower in self.phrases and lower not in self.first_names:
            return False
        words = [w for w in re.split(r"[\s\-]+", lower) if w]
        if words and words[-1] in ORGANISATION_ENDINGS and len(words) > 1:
            return False
        return not all(w in self.never_words for w in words)


@lru_cache(maxsize=1)
def _name_filter() -> _NameFilter:
    from spacy.lang.en.stop_words import STOP_WORDS

    first = set()
    for path in NAMES_DIR.glob("first_*.txt"):
        first.update(n.lower() for n in _read_list(path))
    phrases = {p.lower() for p in _read_list(NAMES_DIR / "places.txt")}
    phrases |= {p.lower() for p in _read_list(NAMES_DIR / "organisations.txt")}
    never = {w.lower() for w in _read_list(NAMES_DIR / "never_names.txt")} | set(STOP_WORDS)
    # Single words of place and organisation names ("office", "aid") that are not first names.
    never |= {w for p in phrases for w in p.split() if len(w) > 1 and w not in first}
    never |= {"mr", "mrs", "ms", "miss", "dr", "mr.", "mrs.", "ms.", "dr."}
    return _NameFilter(frozenset(first), frozenset(never), frozenset(phrases))


class _Engine:
    """Presidio AnalyzerEngine + our recognizers + the name pipeline, built once."""

    def __init__(self) -> None:
        import spacy
        import tldextract
        from presidio_analyzer import (
            AnalyzerEngine,
            EntityRecognizer,
            RecognizerRegistry,
            RecognizerResult,
        )
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IpRecognizer,
            NhsRecognizer,
            SpacyRecognizer,
        )
        from presidio_anonymizer import AnonymizerEngine

        import bot.nlp.pii_pipeline  # noqa: F401 - registers the pipeline's custom components

        # If tldextract was imported before our environment variable was set, its default
        # extractor still holds the download URLs: empty them so it never goes online.
        default_extractor = getattr(tldextract.tldextract, "TLD_EXTRACTOR", None)
        if default_extractor is not None and getattr(default_extractor, "suffix_list_urls", ()):
            default_extractor.suffix_list_urls = ()

        path = pipeline_path()
        if not (path / "meta.json").exists():
            from bot.nlp.pii_pipeline import build_pii_pipeline

            log.info("Building the PII name pipeline at %s (first use)", path)
            build_pii_pipeline(path)
        nlp = spacy.load(path)

        ner_config = NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON"},
            labels_to_ignore=[],
            low_score_entity_names=[],
            default_score=0.85,
        )
        # Handing Presidio the loaded pipeline means it never calls load(), which would try
        # `spacy download` for anything that is not an installed package or existing path.
        nlp_engine = SpacyNlpEngine(
            models=[{"lang_code": "en", "model_name": str(path)}],
            ner_model_configuration=ner_config,
        )
        nlp_engine.nlp = {"en": nlp}

        class CustomRecognizer(EntityRecognizer):
            """One of our regex-layer detectors, as a Presidio recognizer."""

            def __init__(self, entity: str, detector: Callable[[str], list[_Hit]]):
                self._detector = detector
                super().__init__(supported_entities=[entity], name=f"safe_report_{entity}")

            def load(self) -> None:
                pass

            def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001
                return [
                    RecognizerResult(hit.type, hit.start, hit.end, hit.score)
                    for hit in self._detector(text)
                ]

        registry = RecognizerRegistry(supported_languages=["en"])
        registry.recognizers = []
        for recognizer in (
            EmailRecognizer(),
            CreditCardRecognizer(),
            IpRecognizer(),
            NhsRecognizer(),
            SpacyRecognizer(supported_entities=["PERSON"], ner_strength=0.85),
        ):
            registry.add_recognizer(recognizer)
        for entity, detector in CUSTOM_DETECTORS.items():
            registry.add_recognizer(CustomRecognizer(entity, detector))

        self.analyzer = AnalyzerEngine(
            registry=registry, nlp_engine=nlp_engine, supported_languages=["en"]
        )
        self.anonymizer = AnonymizerEngine()

    def analyze(self, text: str) -> list[_Hit]:
        results = self.analyzer.analyze(text=text, language="en", score_threshold=0.3)
        hits = []
        for r in results:
            type_ = PRESIDIO_TYPES.get(r.entity_type, r.entity_type)
            if type_ in PLACEHOLDERS:
                hits.append(_Hit(type_, r.start, r.end, float(r.score)))
        return hits

    def anonymize(self, text: str, findings: list[Finding]) -> str:
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        results = [RecognizerResult(f.type, f.start, f.end, 1.0) for f in findings]
        operators = {
            type_: OperatorConfig("replace", {"new_value": placeholder})
            for type_, placeholder in PLACEHOLDERS.items()
        }
        return self.anonymizer.anonymize(text=text, analyzer_results=results,
                                         operators=operators).text


def pipeline_path() -> Path:
    try:
        from bot.settings import get_settings

        return Path(get_settings().spacy_pii_pipeline)
    except Exception:
        return Path(__file__).resolve().parents[2] / "build" / "spacy" / "safe_report_pii"


_engine: _Engine | None = None
_engine_failed = False
_engine_lock = threading.Lock()


def _get_engine() -> _Engine | None:
    """The engine, built on first use; None (and the regex layer) if it cannot be built."""
    global _engine, _engine_failed
    if _engine is not None or _engine_failed:
        return _engine
    with _engine_lock:
        if _engine is None and not _engine_failed:
            try:
                _engine = _Engine()
            except Exception:
                _engine_failed = True
                log.exception("PII engine unavailable; using the regex layer only")
    return _engine


def warm_up() -> None:
    """Load everything now rather than on the first message."""
    find_personal_data("My name is Amina, call me on 07700 900123.")


def is_warm() -> bool:
    """Whether the detector's spaCy pipeline is loaded (or known to be unavailable)."""
    return _engine is not None or _engine_failed


# ====================================================================== resolving overlaps


def _fix_phone_vs_nhs(text: str, hits: list[_Hit]) -> list[_Hit]:
    """A 10-digit number starting with 0 is a phone unless "NHS"/"CHI" is said nearby."""
    phones = [h for h in hits if h.type == "PHONE"]
    if not phones:
        return hits
    out = []
    for hit in hits:
        if hit.type == "NHS_NUMBER" and text[hit.start:hit.end].lstrip().startswith("0"):
            nearby = text[max(0, hit.start - 40):hit.start].lower()
            overlaps_phone = any(p.start < hit.end and hit.start < p.end for p in phones)
            if overlaps_phone and not re.search(r"\b(?:nhs|chi|health|hospital|gp)\b", nearby):
                continue
        out.append(hit)
    return out


def _resolve(text: str, hits: list[_Hit]) -> list[Finding]:
    """Non-overlapping findings: same-type overlaps merge, other overlaps go to the best."""
    name_filter = None
    cleaned = []
    for hit in _fix_phone_vs_nhs(text, hits):
        start, end = max(0, hit.start), min(len(text), hit.end)
        # Trim surrounding spaces and punctuation a detector may have taken in.
        while start < end and (text[start] in " \t\r\n,;:\"'"
                               or (text[start] == "(" and ")" not in text[start:end])):
            start += 1
        while end > start and (text[end - 1] in " \t\r\n,;:.\"'!?"
                               or (text[end - 1] == ")" and "(" not in text[start:end])):
            end -= 1
        # A phone number written "(0161) 496 0871": take the opening bracket back in.
        if start > 0 and text[start - 1] == "(" and ")" in text[start:end]:
            start -= 1
        if end <= start:
            continue
        if hit.type == "NAME":
            name_filter = name_filter or _name_filter()
            if not name_filter.keep(text[start:end]):
                continue
        cleaned.append(_Hit(hit.type, start, end, hit.score))

    # Same type, overlapping: one finding covering both.
    merged: list[_Hit] = []
    for hit in sorted(cleaned, key=lambda h: (h.type, h.start, -h.end)):
        last = merged[-1] if merged else None
        if last and last.type == hit.type and hit.start < last.end:
            merged[-1] = _Hit(hit.type, last.start, max(last.end, hit.end), max(last.score, hit.score))
        else:
            merged.append(hit)

    rank = {t: i for i, t in enumerate(TYPE_PRIORITY)}
    chosen: list[_Hit] = []
    starts: list[int] = []  # chosen, kept sorted by start (they never overlap)
    for hit in sorted(merged, key=lambda h: (-h.score, rank.get(h.type, 99), -(h.end - h.start))):
        i = bisect.bisect_left(starts, hit.start)
        clear_before = i == 0 or chosen[i - 1].end <= hit.start
        clear_after = i == len(chosen) or chosen[i].start >= hit.end
        if clear_before and clear_after:
            chosen.insert(i, hit)
            starts.insert(i, hit.start)
    return [Finding(h.type, h.start, h.end, text[h.start:h.end]) for h in chosen]


# ============================================================================ public API


def _chunks(text: str) -> Iterable[tuple[int, str]]:
    """(offset, piece) of at most CHUNK_CHARS + CHUNK_OVERLAP characters."""
    for offset in range(0, len(text), CHUNK_CHARS):
        yield offset, text[offset:offset + CHUNK_CHARS + CHUNK_OVERLAP]


def _regex_layer_hits(text: str) -> list[_Hit]:
    if len(text) <= CHUNK_CHARS + CHUNK_OVERLAP:
        return regex_layer(text)
    hits: list[_Hit] = []
    for offset, piece in _chunks(text):
        hits += [
            _Hit(h.type, h.start + offset, h.end + offset, h.score)
            for h in regex_layer(piece)
            # The overlap belongs to the next chunk unless a hit starts before it.
            if h.start < CHUNK_CHARS
        ]
    return hits


def find_personal_data(text: str) -> list[Finding]:
    """Every piece of personal data found in `text`, in order, without overlaps.

    Never raises: if the full engine fails the regex layer answers; if that fails too, the
    answer is empty (redact() then masks the whole text rather than leak it).
    """
    try:
        return _find(text)
    except Exception:
        log.exception("PII detection failed")
        return []


def _find(text: str) -> list[Finding]:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if not text or text.isspace():
        return []
    hits: list[_Hit] | None = None
    engine = _get_engine() if len(text) <= MAX_ENGINE_CHARS else None
    if engine is not None:
        try:
            hits = engine.analyze(text)
        except Exception:
            log.exception("PII engine failed on a message; using the regex layer")
    if hits is None:
        hits = _regex_layer_hits(text)
    return _outside_placeholders(text, _resolve(text, hits))


_PLACEHOLDER_SPAN = re.compile(r"\[(?:" + "|".join(
    re.escape(p[1:-1]) for p in (*PLACEHOLDERS.values(), "[REDACTED]", "[CONTACT_DETAIL]")
) + r")\]")


def _outside_placeholders(text: str, findings: list[Finding]) -> list[Finding]:
    """Findings with any placeholder already in the text cut out of them.

    Text that was redacted once is redacted again downstream (a transcript, a slot): a
    finding must never swallow "[NAME]" and the characters next to it, or a second pass
    would turn "[NAME]:I" into "[[NAME]". What is left of a finding beside a placeholder
    is kept when it still holds two letters or digits (a lone "I" is not a name).
    """
    spans = [m.span() for m in _PLACEHOLDER_SPAN.finditer(text)]
    if not spans:
        return findings
    kept: list[Finding] = []
    for finding in findings:
        pieces = [(finding.start, finding.end)]
        for start, end in spans:
            next_pieces = []
            for a, b in pieces:
                if end <= a or start >= b:
                    next_pieces.append((a, b))
                    continue
                if a < start:
                    next_pieces.append((a, start))
                if end < b:
                    next_pieces.append((end, b))
            pieces = next_pieces
        for a, b in pieces:
            chunk = text[a:b]
            if sum(ch.isalnum() for ch in chunk) >= 2:
                kept.append(Finding(finding.type, a, b, chunk))
    return kept


REDACTION_FAILED = "[REDACTED]"


def redact(text: str) -> str:
    """`text` with every finding replaced by its placeholder.

    Fails closed: if something goes wrong that the fall-backs cannot handle, the whole text
    is replaced, never stored as it was.
    """
    try:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        findings = _find(text)
        if not findings:
            return text
        engine = _engine
        if engine is not None:
            try:
                return engine.anonymize(text, findings)
            except Exception:
                log.exception("Presidio anonymizer failed; replacing by hand")
        return _replace(text, findings)
    except Exception:
        log.exception("Redaction failed; the whole text is withheld")
        return REDACTION_FAILED


def _replace(text: str, findings: list[Finding]) -> str:
    parts, pos = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        parts.append(text[pos:f.start])
        parts.append(PLACEHOLDERS[f.type])
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)
