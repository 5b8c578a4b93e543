"""The knowledge base: build, search, contacts and opening hours, render, check, CLI.

Everything runs against real SQLite files built from tests/fixtures/knowledge into a
temporary folder. Times are fixed London datetimes (GMT and BST dates, weekends, the
minutes around opening and closing) so the results never depend on when tests run.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.knowledge import (
    Article,
    Contact,
    KnowledgeBase,
    KnowledgeBaseUnavailable,
    SearchResult,
    build_knowledge_base,
    check_knowledge,
)
from bot.knowledge.check import phone_like_numbers
from bot.knowledge.cli import kb as kb_group
from bot.knowledge.contacts import (
    HoursError,
    OpeningHours,
    parse_hours,
    parse_hours_spec,
)
from bot.knowledge.render import (
    ADVICE_LINE_UNCONFIGURED,
    advice_line_text,
    render_article_body,
    render_text,
)
from bot.knowledge.search import QueryBuilder
from bot.knowledge.store import is_stale, read_meta
from bot.settings import AdviceLine, Settings

FIXTURES = Path(__file__).parent / "fixtures" / "knowledge"
LONDON = ZoneInfo("Europe/London")
FIXTURE_IDS = {
    "about-this-service", "domestic-abuse-support", "emergency-help",
    "healthcare-without-fear", "labour-exploitation", "police-england-wales",
    "police-scotland",
}
# The day the fixtures are checked "on": the labour article (reviewed 2025-01-15, source
# from 2019) and the night line (source 2019) are then out of date.
CHECK_DAY = datetime(2026, 11, 28, 12, 0, tzinfo=LONDON)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.fixture(scope="module")
def kb_path(tmp_path_factory) -> Path:
    return build_knowledge_base(FIXTURES, tmp_path_factory.mktemp("kb") / "knowledge.db")


@pytest.fixture(scope="module")
def kb(kb_path) -> KnowledgeBase:
    return KnowledgeBase.open(kb_path)


@pytest.fixture
def source(tmp_path) -> Path:
    """An editable copy of the fixtures."""
    destination = tmp_path / "knowledge"
    shutil.copytree(FIXTURES, destination)
    return destination


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def make_settings(tmp_path: Path, **changes) -> Settings:
    return Settings(data_dir=tmp_path, **changes)


def ids(results: list[SearchResult]) -> list[str]:
    return [r.id for r in results]


# --- Build -----------------------------------------------------------------------------------


def test_build_writes_every_table(kb_path):
    conn = sqlite3.connect(kb_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"articles", "contacts", "synonyms", "meta", "articles_fts"} <= tables
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == len(FIXTURE_IDS)
    assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 6
    assert conn.execute("SELECT count(*) FROM synonyms").fetchone()[0] > 50
    # Porter stemming: "hurts" in a title is found by "hurting".
    fts_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name='articles_fts'").fetchone()[0]
    assert "porter" in fts_sql
    found = conn.execute(
        "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH '\"hurting\"'"
    ).fetchone()[0]
    assert found >= 1
    conn.close()


def test_build_replaces_atomically_and_leaves_no_temp_files(source, tmp_path):
    db = tmp_path / "data" / "knowledge.db"
    build_knowledge_base(source, db)
    (source / "emergency-help.md").unlink()
    build_knowledge_base(source, db)
    assert len(KnowledgeBase.open(db).articles()) == len(FIXTURE_IDS) - 1
    assert [p.name for p in db.parent.iterdir()] == ["knowledge.db"]


def test_failed_build_keeps_the_old_database(source, tmp_path, monkeypatch):
    db = tmp_path / "knowledge.db"
    build_knowledge_base(source, db)
    before = db.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("bot.knowledge.store.article_record", explode)
    with pytest.raises(RuntimeError):
        build_knowledge_base(source, db)
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["knowledge.db"]


def test_build_skips_broken_articles_and_records_them(source, tmp_path):
    edit(source / "emergency-help.md", "title: If you are in danger now\n", "")
    db = build_knowledge_base(source, tmp_path / "knowledge.db")
    assert KnowledgeBase.open(db).article("emergency-help") is None
    skipped = json.loads(read_meta(db)["skipped"])
    assert any("emergency-help.md" in s and "title" in s for s in skipped)


def test_build_needs_the_source_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_knowledge_base(tmp_path / "nowhere", tmp_path / "knowledge.db")


def test_build_of_an_empty_folder_gives_an_empty_searchable_base(tmp_path):
    (tmp_path / "empty").mkdir()
    db = build_knowledge_base(tmp_path / "empty", tmp_path / "knowledge.db")
    empty = KnowledgeBase.open(db)
    assert empty.articles() == [] and empty.contacts() == []
    assert empty.search("police") == []


def test_is_stale_follows_the_sources(source, tmp_path):
    db = tmp_path / "knowledge.db"
    assert is_stale(source, db)
    build_knowledge_base(source, db)
    assert not is_stale(source, db)
    edit(source / "contacts.yml", "Karma Nirvana", "Karma Nirvana UK")
    assert is_stale(source, db)


# --- Opening ----------------------------------------------------------------------------------


def test_open_missing_file_says_how_to_build(tmp_path):
    with pytest.raises(KnowledgeBaseUnavailable, match="safe-report kb build"):
        KnowledgeBase.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()  # read-only open never creates it


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_open_corrupt_file_is_unavailable(tmp_path, content):
    bad = tmp_path / "knowledge.db"
    bad.write_bytes(content)
    with pytest.raises(KnowledgeBaseUnavailable, match="kb build"):
        KnowledgeBase.open(bad)


def test_open_is_cached_until_the_file_changes(source, tmp_path):
    db = build_knowledge_base(source, tmp_path / "knowledge.db")
    first = KnowledgeBase.open(db)
    assert KnowledgeBase.open(db) is first
    edit(source / "emergency-help.md", "title: If you are in danger now", "title: Danger now")
    build_knowledge_base(source, db)
    second = KnowledgeBase.open(db)
    assert second is not first
    assert second.article("emergency-help").title == "Danger now"


def test_search_connection_is_read_only(kb):
    kb.search("police")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        kb._connection().execute("DELETE FROM articles")


def test_search_works_from_many_threads(kb):
    def top(question: str) -> tuple[str, str]:
        return threading.current_thread().name, kb.search(question)[0].id

    questions = ["my boss does not pay me", "can i see a doctor", "report crime scotland"] * 20
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(top, questions))
    assert {r[1] for r in results} == {"labour-exploitation", "healthcare-without-fear",
                                       "police-scotland"}
    assert len({r[0] for r in results}) > 1


# --- Look-ups ---------------------------------------------------------------------------------


def test_article_lookup_returns_the_dataclass(kb):
    article = kb.article("domestic-abuse-support")
    assert isinstance(article, Article)
    assert article.title == "Help if a partner or family member hurts you"
    assert article.situations == ("domestic_abuse", "victim", "immigration_fear")
    assert article.nations == ("all",)
    assert article.contacts == ("national_da_helpline", "scotland_da_helpline", "karma_nirvana")
    assert "refuge" in article.keywords
    assert article.sources[0].url.startswith("https://www.gov.uk/")
    assert article.sources[0].date == date(2026, 5, 1)
    assert article.last_reviewed == date(2026, 10, 1)
    assert "{{contact:national_da_helpline}}" in article.body  # raw markdown
    assert kb.article("no-such-article") is None
    assert {a.id for a in kb.articles()} == FIXTURE_IDS


def test_contact_lookup(kb):
    helpline = kb.contact("national_da_helpline")
    assert isinstance(helpline, Contact)
    assert helpline.phone == "0808 2000 247"
    assert helpline.nations == ("england-wales",)
    assert helpline.free is True and helpline.is_24_7
    assert kb.contact("night_line").text == "85258"  # quoted in YAML, stays a string
    assert kb.contact("nobody") is None
    assert len(kb.contacts()) == 6


def test_always_open_contacts_by_nation(kb):
    scotland = [c.key for c in kb.always_open_contacts("scotland")]
    assert scotland == ["scotland_da_helpline", "police_999"]  # helplines first, 999 last
    england = [c.key for c in kb.always_open_contacts("england-wales")]
    assert england == ["national_da_helpline", "police_999"]
    everywhere = {c.key for c in kb.always_open_contacts()}
    assert everywhere == {"police_999", "national_da_helpline", "scotland_da_helpline"}
    # The triage slot's "skipped" is not a nation.
    assert {c.key for c in kb.always_open_contacts("skipped")} == everywhere


# --- Search -----------------------------------------------------------------------------------


def test_search_finds_by_title_and_keywords(kb):
    assert ids(kb.search("domestic abuse refuge"))[0] == "domestic-abuse-support"
    assert ids(kb.search("silent call emergency"))[0] == "emergency-help"


def test_search_results_are_best_first_with_snippets(kb):
    results = kb.search("police report crime", limit=5)
    assert results and all(isinstance(r, SearchResult) for r in results)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all(isinstance(r.snippet, str) and "{{" not in r.snippet for r in results)
    assert any("report" in r.snippet.lower() for r in results)


def test_search_limit(kb):
    assert len(kb.search("police", limit=1)) == 1
    assert kb.search("police", limit=0) == []


@pytest.mark.parametrize(
    "question, expected",
    [
        ("my boss took my wages", "labour-exploitation"),  # boss → employer
        ("can i see a doctor", "healthcare-without-fear"),  # doctor → gp nhs hospital
        ("my husband hits me", "domestic-abuse-support"),  # husband → partner, domestic abuse
        ("i went to a&e", "healthcare-without-fear"),  # a phrase key with a symbol
        ("the cops in glasgow", "police-scotland"),  # cops → police, glasgow → scotland
    ],
)
def test_synonyms_bring_users_words_to_articles_words(kb, question, expected):
    assert ids(kb.search(question))[0] == expected


def test_query_builder_expands_inflections_and_phrases():
    builder = QueryBuilder({"deport": ["home office"], "kid": ["children"],
                            "a&e": ["hospital"], "no papers": ["immigration status"]})
    terms = builder.terms("Will they DEPORTED my kids? I have no papers, went to A&E")
    assert '"home office"' in terms and '"children"' in terms
    assert '"hospital"' in terms and '"immigration status"' in terms
    # The person's own words come first and stopwords are gone.
    assert terms[0] == '"deported"'
    assert '"will"' not in terms and '"i"' not in terms


def test_users_words_weigh_more_than_synonyms():
    builder = QueryBuilder({"boss": ["employer"]})
    assert builder.match_expression("boss") == '"boss" OR "boss" OR "employer"'


def test_situation_boost_lifts_matching_articles(kb):
    plain = kb.search("rights whatever their immigration status", limit=10)
    boosted = kb.search("rights whatever their immigration status",
                        situations=["labour_exploitation"], limit=10)
    plain_rank = ids(plain).index("labour-exploitation")
    boosted_rank = ids(boosted).index("labour-exploitation")
    assert boosted_rank < plain_rank
    assert boosted[boosted_rank].score > plain[plain_rank].score


def test_nation_boost_prefers_articles_for_that_nation(kb):
    assert ids(kb.search("report a crime to the police", nation="scotland"))[0] == "police-scotland"
    assert ids(kb.search("report a crime to the police", nation="england-wales"))[0] == (
        "police-england-wales"
    )


def test_unknown_situations_and_nations_are_ignored(kb):
    plain = kb.search("report crime")
    odd = kb.search("report crime", situations=["'); DROP TABLE articles; --", "nope"],
                    nation="mars")
    assert [(r.id, r.score) for r in odd] == [(r.id, r.score) for r in plain]


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "what is the", "?!?", "...", "I"])
def test_empty_or_stopword_only_questions_find_nothing(kb, question):
    assert kb.search(question) == []


HOSTILE = [
    '"', '""', '"police', 'police"', "AND", "OR", "NOT", "NEAR", "police AND", "OR OR OR",
    "NOT police", "NEAR(police crime, 2)", "police*", "*", "^police", "title:police",
    "body_text:crime", "(police", "police)", "((((", "))))", "{title summary}: police",
    "-police", "+police", "police -crime", "a&e", "😀😀 police 😀", "الشرطة", "警察",
    "полиция", "पुलिस", "\x00police\x00", "police\u200bcrime", "\ud800", "'; DROP TABLE articles; --",
    "zzfillerzz", "police " * 5000, "x" * 10_000, "word " * 2500, "NEAR/3", "col1 : col2",
]


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_questions_never_raise(kb, question):
    results = kb.search(question, limit=5)
    assert isinstance(results, list) and len(results) <= 5


FTS_SYNTAX = st.sampled_from(
    ['"', "AND", "OR", "NOT", "NEAR", "NEAR(", "*", "^", ":", "(", ")", "{", "}", "-", "+",
     ",", "'", "\\", "\x00", "😀", "ü", "дом", "家", "police", "doctor", "a&e", "\n", "_"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(FTS_SYNTAX, st.text(max_size=12)), max_size=40).map(" ".join))
def test_any_text_is_a_safe_query(kb, question):
    results = kb.search(question, situations=["victim"], nation="scotland", limit=3)
    assert len(results) <= 3
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_match_expression_is_only_quoted_words(question):
    expression = QueryBuilder({"doctor": ["gp", "nhs"]}).match_expression(question)
    if expression is not None:
        assert re.fullmatch(r'"[^"\s]+(?: [^"\s]+)*"(?: OR "[^"\s]+(?: [^"\s]+)*")*', expression)


def test_long_questions_are_capped():
    text = " ".join(f"word{i}" for i in range(5000))
    assert len(QueryBuilder({}).terms(text)) <= 48


def test_search_survives_a_deleted_database(source, tmp_path):
    db = build_knowledge_base(source, tmp_path / "knowledge.db")
    opened = KnowledgeBase.open(db)
    db.unlink()
    # A new thread has no connection yet and cannot open one: "nothing found", no crash.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(opened.search, "police").result() == []


# --- Opening hours ------------------------------------------------------------------------------

NINE_TO_FIVE = parse_hours({d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})


@pytest.mark.parametrize(
    "moment, is_open",
    [
        (london(2026, 1, 12, 8, 59), False),  # Monday, GMT: just before opening
        (london(2026, 1, 12, 9, 0), True),  # opening minute
        (london(2026, 1, 12, 16, 59), True),  # last minute
        (london(2026, 1, 12, 17, 0), False),  # closing minute
        (london(2026, 7, 13, 8, 59), False),  # Monday, BST
        (london(2026, 7, 13, 9, 0), True),
        (datetime(2026, 7, 13, 8, 0, tzinfo=timezone.utc), True),  # 9:00 BST given in UTC
        (datetime(2026, 7, 13, 7, 59, tzinfo=timezone.utc), False),  # 8:59 BST
        (datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc), True),  # GMT: UTC is London time
        (datetime(2026, 7, 13, 9, 0), True),  # naive = London time
        (london(2026, 1, 17, 12, 0), False),  # Saturday
        (london(2026, 1, 18, 12, 0), False),  # Sunday
    ],
)
def test_weekly_hours_in_london_time(moment, is_open):
    assert NINE_TO_FIVE.is_open(moment) is is_open


def test_next_opening_over_a_weekend_and_the_clock_change():
    saturday = london(2026, 1, 17, 12, 0)
    assert NINE_TO_FIVE.next_opening(saturday) == london(2026, 1, 19, 9, 0)
    # Clocks go forward on Sunday 29 March 2026: Monday 9am is 8am UTC.
    before_change = london(2026, 3, 28, 12, 0)
    opening = NINE_TO_FIVE.next_opening(before_change)
    assert opening.astimezone(timezone.utc) == datetime(2026, 3, 30, 8, 0, tzinfo=timezone.utc)
    # Open now: the next opening is now.
    monday = london(2026, 1, 12, 10, 0)
    assert NINE_TO_FIVE.next_opening(monday) == monday
    # Friday evening → Monday morning.
    assert NINE_TO_FIVE.next_opening(london(2026, 1, 16, 17, 0)) == london(2026, 1, 19, 9, 0)


def test_overnight_and_midnight_ranges(kb):
    night = kb.contact("night_line").hours  # mon 22:00-02:00; fri 09:30-12:00, 13:00-24:00
    assert night.is_open(london(2026, 1, 12, 21, 59)) is False
    assert night.is_open(london(2026, 1, 12, 22, 0)) is True
    assert night.is_open(london(2026, 1, 13, 1, 59)) is True  # Tuesday, still Monday's range
    assert night.is_open(london(2026, 1, 13, 2, 0)) is False
    assert night.is_open(london(2026, 1, 16, 23, 59)) is True  # Friday until midnight
    assert night.is_open(london(2026, 1, 17, 0, 0)) is False
    assert night.is_open(london(2026, 1, 16, 12, 30)) is False  # lunch break


def test_always_and_unknown_hours(kb):
    always, unknown = kb.contact("police_999"), kb.contact("web_only")
    moment = london(2026, 1, 17, 3, 0)
    assert always.is_open(moment) is True and always.is_24_7
    assert always.next_opening(moment) == moment
    assert unknown.is_open(moment) is None and not unknown.is_24_7
    assert unknown.next_opening(moment) is None
    # Seven full days written out are 24/7 too.
    assert parse_hours({d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                      "sun")}).is_24_7


@pytest.mark.parametrize(
    "key, moment, expected",
    [
        ("national_da_helpline", london(2026, 1, 17, 3, 0),
         "National Domestic Abuse Helpline: 0808 2000 247 (free, open 24 hours a day)"),
        ("karma_nirvana", london(2026, 1, 17, 12, 0),
         "Karma Nirvana: 0800 5999 247 (closed now, opens Monday at 9am)"),
        ("karma_nirvana", london(2026, 1, 12, 8, 0),
         "Karma Nirvana: 0800 5999 247 (closed now, opens today at 9am)"),
        ("karma_nirvana", london(2026, 1, 15, 18, 0),
         "Karma Nirvana: 0800 5999 247 (closed now, opens tomorrow at 9am)"),
        ("karma_nirvana", london(2026, 7, 13, 10, 0),
         "Karma Nirvana: 0800 5999 247 (open now until 5pm)"),
        ("night_line", london(2026, 1, 16, 8, 0),
         "Night Line: 0800 111 2222, or text 85258 (free, closed now, opens today at 9:30am)"),
        ("night_line", london(2026, 1, 16, 10, 0),
         "Night Line: 0800 111 2222, or text 85258 (free, open now until midday)"),
        ("night_line", london(2026, 1, 16, 14, 0),
         "Night Line: 0800 111 2222, or text 85258 (free, open now until midnight)"),
        ("web_only", london(2026, 1, 16, 14, 0),
         "Work Rights Centre: https://www.workrightscentre.org/"),
    ],
)
def test_describe(kb, key, moment, expected):
    assert kb.contact(key).describe(moment) == expected


def test_describe_uses_short_text_wording_only():
    moment = london(2026, 1, 12, 10, 0)
    textphone = Contact(key="police_101", name="Police non-emergency number (101)", phone="101",
                        text="Textphone: 18001 101", hours=parse_hours("24/7"))
    assert textphone.describe(moment) == (
        "Police non-emergency number (101): 101, or textphone: 18001 101 (open 24 hours a day)"
    )
    assert textphone.numbers == {"101", "18001101"}
    advice = Contact(key="police_999", name="Emergency services (999)", phone="999", free=True,
                     text="Deaf or speech-impaired? Use the emergency text relay, or 999 BSL.",
                     hours=parse_hours("24/7"))
    assert advice.describe(moment) == "Emergency services (999): 999 (free, open 24 hours a day)"


@pytest.mark.parametrize(
    "value, problem",
    [
        ("9 to 5", "24/7"),
        ({"mon": ["9-5"]}, "time range"),
        ({"mon": ["25:00-26:00"]}, "impossible"),
        ({"mon": ["09:00-09:00"]}, "same time"),
        ({"tues": ["09:00-17:00"]}, "unknown day"),
        ({"mon": {"open": "09:00"}}, "list"),
        (["09:00-17:00"], "mapping"),
    ],
)
def test_malformed_hours(value, problem):
    with pytest.raises(HoursError, match=problem):
        parse_hours(value)


def test_hours_spec_for_the_advice_line():
    hours = parse_hours_spec("mon-fri 10:00-16:00; wed 18:00-20:00")
    assert hours.weekly[2] == ((600, 960), (1080, 1200))  # Wednesday has both ranges
    assert hours.weekly[5] == ()
    assert hours.summary() == (
        "Monday to Tuesday 10am to 4pm; Wednesday 10am to 4pm and 6pm to 8pm; "
        "Thursday to Friday 10am to 4pm"
    )
    assert parse_hours_spec("mon,wed 10:00-13:00; thu 14:00-18:00").weekly[3] == ((840, 1080),)
    assert [bool(d) for d in parse_hours_spec("fri-mon 10:00-12:00").weekly] == [
        True, False, False, False, True, True, True]
    assert parse_hours_spec("") == OpeningHours()  # unknown
    assert parse_hours_spec("24/7").is_24_7
    for bad in ("weekdays 10:00-16:00", "mon-fri", "mon 10-16", "mon-fri 10:00-25:00"):
        with pytest.raises(HoursError):
            parse_hours_spec(bad)


# --- Render -----------------------------------------------------------------------------------


def test_render_replaces_contacts_settings_and_links(kb, tmp_path):
    article = kb.article("about-this-service")
    text = render_article_body(article, kb, make_settings(tmp_path, conversation_retention_hours=12),
                               london(2026, 1, 12, 10, 0))
    assert "deleted 12 hours after your last message" in text
    assert "deleted 30 days after it is closed" in text
    assert "Read about getting healthcare." in text  # [text](article:ID) → text
    assert ADVICE_LINE_UNCONFIGURED in text
    assert "{{" not in text and "article:" not in text


def test_render_link_anchor_style(kb, tmp_path):
    text = render_article_body(kb.article("about-this-service"), kb, make_settings(tmp_path),
                               london(2026, 1, 12, 10, 0), links="anchor")
    assert "[getting healthcare](#article-healthcare-without-fear)" in text


def test_render_contact_open_or_closed(kb, tmp_path):
    article = kb.article("domestic-abuse-support")
    saturday = render_article_body(article, kb, make_settings(tmp_path), london(2026, 1, 17, 12, 0))
    assert "- Karma Nirvana: 0800 5999 247 (closed now, opens Monday at 9am)" in saturday
    assert "- National Domestic Abuse Helpline: 0808 2000 247 (free, open 24 hours a day)" in saturday
    monday = render_article_body(article, kb, make_settings(tmp_path), london(2026, 1, 12, 10, 0))
    assert "Karma Nirvana: 0800 5999 247 (open now until 5pm)" in monday


def test_render_never_prints_other_settings_or_unknown_contacts(kb, tmp_path):
    secret = make_settings(tmp_path, encryption_key="SECRET-KEY", session_secret="S2")
    text = render_text(
        "a {{setting:encryption_key}} b {{setting:session_secret}} c\n- {{contact:nobody}}\n- ok\n",
        kb, secret, london(2026, 1, 12, 10, 0),
    )
    assert "SECRET" not in text and "S2" not in text
    assert text == "a  b  c\n- ok\n"  # the empty list item is dropped


def test_every_fixture_article_renders_without_placeholders(kb, tmp_path):
    for article in kb.articles():
        text = render_article_body(article, kb, make_settings(tmp_path), london(2026, 1, 12, 10, 0))
        assert "{{" not in text and "}}" not in text and "](article:" not in text


def test_advice_line_unconfigured_gives_no_number(tmp_path):
    text = advice_line_text(make_settings(tmp_path), london(2026, 1, 12, 10, 0))
    assert text == (
        "Liberty's Advice and Information service: find it on Liberty's website, "
        "libertyhumanrights.org.uk, under 'Get advice'"
    )
    assert not re.search(r"\d", text)


def test_advice_line_configured(tmp_path):
    line = AdviceLine(phone="020 0000 0000", web="https://example.org/advice",
                      hours="mon-fri 10:00-16:00; wed 18:00-20:00")
    settings_ = make_settings(tmp_path, advice_line=line)
    open_now = advice_line_text(settings_, london(2026, 7, 15, 11, 0))  # Wednesday, BST
    assert open_now.startswith("Liberty Advice and Information: 020 0000 0000 (open now until 4pm)")
    assert "https://example.org/advice" in open_now
    assert "Opening hours (UK time): Monday to Tuesday 10am to 4pm" in open_now
    evening = advice_line_text(settings_, london(2026, 7, 15, 17, 0))
    assert "(closed now, opens today at 6pm)" in evening
    weekend = advice_line_text(settings_, london(2026, 7, 18, 11, 0))
    assert "(closed now, opens Monday at 10am)" in weekend


def test_advice_line_with_unreadable_hours_still_gives_the_number(tmp_path):
    line = AdviceLine(phone="020 0000 0000", hours="whenever")
    text = advice_line_text(make_settings(tmp_path, advice_line=line), london(2026, 7, 15, 11, 0))
    assert text == "Liberty Advice and Information: 020 0000 0000"


def test_advice_line_web_only(tmp_path):
    line = AdviceLine(web="https://example.org/advice")
    text = advice_line_text(make_settings(tmp_path, advice_line=line), london(2026, 7, 15, 11, 0))
    assert text == "Liberty Advice and Information: https://example.org/advice"


# --- Check ------------------------------------------------------------------------------------


def test_fixtures_pass_the_check_with_dated_warnings():
    report = check_knowledge(FIXTURES, now=CHECK_DAY)
    assert report.ok, report.errors
    assert report.errors == []
    warnings = "\n".join(report.warnings)
    assert "labour-exploitation.md: last reviewed 2025-01-15, more than 12 months ago" in warnings
    assert "labour-exploitation.md: source 'National Minimum Wage rates (GOV.UK)'" in warnings
    assert "'night_line' source is dated 2019-01-01" in warnings
    assert len(report.warnings) == 3


def test_no_date_warnings_when_everything_is_recent():
    report = check_knowledge(FIXTURES, now=datetime(2025, 6, 1, tzinfo=LONDON))
    assert not any("months ago" in w for w in report.warnings)


ARTICLE_BREAKAGES = [
    ("emergency-help.md", "id: emergency-help", "id: emergency", "must equal the file name"),
    ("emergency-help.md", "id: emergency-help\n", "", "'id' is missing"),
    ("emergency-help.md", "title: If you are in danger now\n", "", "'title' is missing"),
    ("emergency-help.md", "summary: Call 999", "summary:\nx: Call 999", "'summary' is missing"),
    ("emergency-help.md", "next_step: Call 999 now if you are in danger.\n", "",
     "'next_step' is missing"),
    ("emergency-help.md", "situations: [danger, police]", "situations: [danger, robbery]",
     "unknown value 'robbery'"),
    ("emergency-help.md", "situations: [danger, police]", "situations: []", "must not be empty"),
    ("emergency-help.md", "nations: [all]", "nations: [wales]", "unknown value 'wales'"),
    ("emergency-help.md", "sources:\n", "old_sources:\n", "at least one source"),
    ("emergency-help.md", "url: https://www.policeconduct.gov.uk/silent-solution",
     "url: www.policeconduct.gov.uk", "no http(s) url"),
    ("emergency-help.md", "date: 2026-01-10", "date: last year", "no date"),
    ("emergency-help.md", "last_reviewed: 2026-10-01", "last_reviewed: soon", "'last_reviewed'"),
    ("emergency-help.md", "keywords: [emergency", "keywords: [emergency: [", "malformed front matter"),
    ("emergency-help.md", "---\nid:", "id:", "malformed front matter"),
    ("emergency-help.md", "contacts: [police_999]", "contacts: [police_999, police_998]",
     "unknown contact 'police_998'"),
    ("emergency-help.md", "call {{contact:police_999}}", "call {{contact:ghostbusters}}",
     "{{contact:ghostbusters}} is not in contacts.yml"),
    ("emergency-help.md", "call {{contact:police_999}}", "call {{contact:karma_nirvana}}",
     "{{contact:karma_nirvana}} is used but not listed"),
    ("emergency-help.md", "call {{contact:police_999}}", "call 0800 123 4567",
     "phone number '0800 123 4567' in the body is not in contacts.yml"),
    ("emergency-help.md", "press 55.", "press 55 or ring 112.", "phone number '112'"),
    ("emergency-help.md", "Call 999 now if you are in danger.", "Call 020 7946 0000 now.",
     "in the next_step is not in contacts.yml"),
    ("healthcare-without-fear.md", "(article:about-this-service)", "(article:about-us)",
     "dead link article:about-us"),
    ("healthcare-without-fear.md", "(article:about-this-service)", "(article: about-this-service)",
     "malformed link"),
    ("about-this-service.md", "{{setting:handoff_retention_days}}", "{{setting:encryption_key}}",
     "unknown setting {{setting:encryption_key}}"),
    ("about-this-service.md", "{{advice_line}}", "{{advice_lines}}", "unknown placeholder"),
    ("about-this-service.md", "title: About this service", "title: About "
     "{{setting:conversation_retention_hours}} hours", "'title' is shown as written"),
    ("about-this-service.md", "{{advice_line}}", "{advice_line}}", "unbalanced"),
]


@pytest.mark.parametrize("file, old, new, message", ARTICLE_BREAKAGES)
def test_check_reports_each_article_error(source, file, old, new, message):
    edit(source / file, old, new)
    report = check_knowledge(source, now=CHECK_DAY)
    assert not report.ok
    assert any(message in e for e in report.errors), report.errors


CONTACT_BREAKAGES = [
    ("  name: Karma Nirvana\n", "", "'karma_nirvana' has no name"),
    ("  source: https://karmanirvana.org.uk/\n", "", "'karma_nirvana' has no source"),
    ('    mon: ["09:00-17:00"]', '    mon: ["9am-5pm"]', "'karma_nirvana' has malformed hours"),
    ('  hours: "24/7"\n  nations: [scotland]', '  hours: "always"\n  nations: [scotland]',
     "'scotland_da_helpline' has malformed hours"),
    ("  nations: [england-wales]\n  free: true", "  nations: [wales]\n  free: true",
     "unknown nations"),
    ("web_only:\n", "karma_nirvana:\n", "duplicate key 'karma_nirvana'"),
    ('  phone: "999"', "  phone: 01234567", "'police_999': quote the phone"),
]


@pytest.mark.parametrize("old, new, message", CONTACT_BREAKAGES)
def test_check_reports_each_contact_error(source, old, new, message):
    edit(source / "contacts.yml", old, new)
    report = check_knowledge(source, now=CHECK_DAY)
    assert any(message in e for e in report.errors), report.errors


def test_check_missing_contacts_file(source):
    (source / "contacts.yml").unlink()
    report = check_knowledge(source, now=CHECK_DAY)
    assert "contacts.yml is missing" in report.errors
    assert any("unknown contact 'police_999'" in e for e in report.errors)


def test_check_duplicate_ids(source, monkeypatch):
    path = source / "emergency-help.md"
    monkeypatch.setattr("bot.knowledge.check.article_paths", lambda _: [path, path])
    report = check_knowledge(source, now=CHECK_DAY)
    assert any("duplicate id 'emergency-help'" in e for e in report.errors)


def test_registry_and_universal_numbers_are_allowed_in_text(source):
    edit(source / "emergency-help.md", "Deaf people can use text relay on 18000.",
         "Deaf people can use text relay on 18000. Call 101 or 111. Or 0808 2000 247.")
    report = check_knowledge(source, now=CHECK_DAY)
    assert report.ok, report.errors
    assert any("'0808 2000 247' is written out" in w for w in report.warnings)


DOMAIN = """
version: "3.1"
responses:
  utter_emergency:
    - text: "Call 999. If you cannot speak, press 55. Text relay: 18000."
  utter_helpline:
    - text: "National Domestic Abuse Helpline: 0808 2000 247."
      buttons:
        - title: "OK"
          payload: /affirm
  utter_made_up:
    - text: "Call our friends on 0300 123 9999."
    - text: "Fine"
      buttons:
        - title: "Ring 0800 000 0001"
          payload: '/call{"n": 1234567}'
"""


def test_check_domain_responses(source, tmp_path):
    domain = tmp_path / "domain.yml"  # beside the source folder, like the project root
    domain.write_text(DOMAIN, encoding="utf-8")
    report = check_knowledge(source, now=CHECK_DAY)
    errors = [e for e in report.errors if e.startswith("domain.yml")]
    assert errors == [
        "domain.yml: response utter_made_up gives '0300 123 9999', which is not in contacts.yml",
        "domain.yml: response utter_made_up gives '0800 000 0001', which is not in contacts.yml",
    ]


def test_check_skips_a_missing_domain(source, tmp_path):
    assert not (tmp_path / "domain.yml").exists()
    assert check_knowledge(source, now=CHECK_DAY).ok


def test_check_explicit_domain_path(source, tmp_path):
    other = tmp_path / "elsewhere.yml"
    other.write_text(DOMAIN, encoding="utf-8")
    report = check_knowledge(source, now=CHECK_DAY, domain_path=other)
    assert len([e for e in report.errors if "utter_made_up" in e]) == 2


@pytest.mark.parametrize(
    "text, found",
    [
        ("Call 0808 2000 247 now", ["0808 2000 247"]),
        ("text 85258", ["85258"]),
        ("call 112", ["112"]),
        ("+44 20 7946 0000", ["+44 20 7946 0000"]),
        ("open 24 hours a day, by phone, 24 hours", []),
        ("Rape Crisis 24/7 Support Line", []),
        ("the Data Protection Act 2018 and Article 8", []),
        ("from 2020-2022 we had 300 cases", []),
        ("aged 16 or over, £20,000, 26 months, 1.5 hours", []),
        ("{{contact:rape_crisis_247}} and https://example.org/12345678", []),
    ],
)
def test_phone_like_numbers(text, found):
    assert phone_like_numbers(text) == found


def test_check_report_text():
    report = check_knowledge(FIXTURES, now=CHECK_DAY)
    assert str(report).splitlines()[-1] == "0 error(s), 3 warning(s)"


# --- CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_build(runner, tmp_path):
    db = tmp_path / "knowledge.db"
    result = runner.invoke(kb_group, ["build", "--source", str(FIXTURES), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"Built {db}: 7 articles, 6 contacts," in result.output
    assert db.exists()


def test_cli_build_reports_skipped_files(runner, source, tmp_path):
    edit(source / "emergency-help.md", "title: If you are in danger now\n", "")
    result = runner.invoke(kb_group, ["build", "--source", str(source), "--db",
                                      str(tmp_path / "k.db")])
    assert result.exit_code == 0
    assert "6 articles" in result.output
    assert "Skipped: emergency-help.md" in result.output


def test_cli_build_missing_source(runner, tmp_path):
    result = runner.invoke(kb_group, ["build", "--source", str(tmp_path / "nope"), "--db",
                                      str(tmp_path / "k.db")])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_cli_search_json(runner, kb_path):
    result = runner.invoke(kb_group, ["search", "my boss took my wages", "--json", "--db",
                                      str(kb_path)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["id"] == "labour-exploitation"
    assert set(rows[0]) == {"id", "title", "score", "snippet"}
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_cli_search_options(runner, kb_path):
    args = ["search", "report a crime to the police", "--json", "--db", str(kb_path)]
    scotland = json.loads(runner.invoke(kb_group, [*args, "--nation", "scotland"]).output)
    england = json.loads(runner.invoke(kb_group, [*args, "--nation", "england-wales"]).output)
    assert scotland[0]["id"] == "police-scotland" and england[0]["id"] == "police-england-wales"
    one = json.loads(runner.invoke(kb_group, [*args, "--limit", "1"]).output)
    assert len(one) == 1
    boosted = runner.invoke(kb_group, [*args, "--situation", "danger", "--situation", "victim"])
    assert boosted.exit_code == 0 and json.loads(boosted.output)


def test_cli_search_table_and_nothing_found(runner, kb_path):
    table = runner.invoke(kb_group, ["search", "doctor", "--db", str(kb_path)])
    assert table.exit_code == 0
    assert table.output.startswith("1. healthcare-without-fear")
    nothing = runner.invoke(kb_group, ["search", "", "--db", str(kb_path)])
    assert nothing.output.strip() == "No matching articles."
    assert json.loads(runner.invoke(kb_group, ["search", "", "--json", "--db",
                                               str(kb_path)]).output) == []


def test_cli_search_without_a_database(runner, tmp_path):
    result = runner.invoke(kb_group, ["search", "police", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "safe-report kb build" in result.output


def test_cli_check(runner, source):
    ok = runner.invoke(kb_group, ["check", "--source", str(FIXTURES)])
    assert ok.exit_code == 0, ok.output
    assert "0 error(s)" in ok.output
    edit(source / "healthcare-without-fear.md", "(article:about-this-service)", "(article:nope)")
    broken = runner.invoke(kb_group, ["check", "--source", str(source)])
    assert broken.exit_code == 1
    assert "ERROR   healthcare-without-fear.md: dead link article:nope" in broken.output


def test_cli_show(runner, kb_path):
    text = runner.invoke(kb_group, ["show", "about-this-service", "--db", str(kb_path)])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("# About this service and your privacy")
    assert "{{" not in text.output and "## Sources" in text.output
    data = json.loads(runner.invoke(kb_group, ["show", "domestic-abuse-support", "--json", "--db",
                                               str(kb_path)]).output)
    assert data["id"] == "domestic-abuse-support"
    assert data["contacts"][0].startswith("National Domestic Abuse Helpline: 0808 2000 247")
    assert "{{" not in data["body"] and data["last_reviewed"] == "2026-10-01"
    missing = runner.invoke(kb_group, ["show", "nope", "--db", str(kb_path)])
    assert missing.exit_code == 1 and "No article 'nope'" in missing.output


def test_cli_defaults_come_from_settings(runner, tmp_path, monkeypatch):
    from bot.settings import get_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        built = runner.invoke(kb_group, ["build", "--source", str(FIXTURES)])
        assert built.exit_code == 0, built.output
        assert (tmp_path / "data" / "knowledge.db").exists()
        found = runner.invoke(kb_group, ["search", "doctor", "--json"])
        assert json.loads(found.output)[0]["id"] == "healthcare-without-fear"
    finally:
        get_settings.cache_clear()


def test_public_api_names():
    import bot.knowledge as knowledge
    from bot.knowledge.render import advice_line_text as exported
    from bot.knowledge.store import is_stale as stale

    for name in ("KnowledgeBase", "KnowledgeBaseUnavailable", "build_knowledge_base",
                 "check_knowledge", "SearchResult", "Article", "Contact"):
        assert hasattr(knowledge, name)
    assert callable(exported) and callable(stale)


def test_an_old_instance_does_not_read_a_rebuilt_file(source, tmp_path):
    db = build_knowledge_base(source, tmp_path / "knowledge.db")
    old = KnowledgeBase.open(db)
    (source / "about-this-service.md").unlink()  # shifts rowids in the new file
    build_knowledge_base(source, db)
    with ThreadPoolExecutor(max_workers=1) as pool:  # a thread with no connection yet
        assert pool.submit(old.search, "doctor").result() == []
    assert KnowledgeBase.open(db).search("doctor")[0].id == "healthcare-without-fear"
