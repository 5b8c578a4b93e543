"""Search quality on the real articles: the hand-written questions in
tests/data/kb_questions.yml must find an expected article in the top 3 for ≥ 95% of them.

Writes results/kb_search_report.txt (hit rates and every miss) so a drop can be read,
not guessed. Improve ranking in general (synonyms, weights, keywords), never by
special-casing a question here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.knowledge import KnowledgeBase, build_knowledge_base
from bot.knowledge.articles import article_paths

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
QUESTIONS = ROOT / "tests" / "data" / "kb_questions.yml"
REPORT = ROOT / "results" / "kb_search_report.txt"
MIN_ARTICLES = 20
TOP_K = 3
REQUIRED_HIT_RATE = 0.95


def _questions() -> list[dict]:
    return yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]


def _report(rows: list[tuple[dict, list[str]]]) -> tuple[float, float, str]:
    top1 = sum(1 for q, found in rows if found[:1] and found[0] in q["expect"])
    top_k = sum(1 for q, found in rows if set(found[:TOP_K]) & set(q["expect"]))
    total = len(rows)
    lines = [
        f"Knowledge-base search quality: {total} questions from {QUESTIONS.relative_to(ROOT)}",
        f"top-1 hit rate: {top1}/{total} = {top1 / total:.3f}",
        f"top-{TOP_K} hit rate: {top_k}/{total} = {top_k / total:.3f} "
        f"(required {REQUIRED_HIT_RATE:.2f})",
        "",
        f"Misses (no expected article in the top {TOP_K}):",
    ]
    for question, found in rows:
        if not set(found[:TOP_K]) & set(question["expect"]):
            lines.append(f"  {question['q']!r}: got {found[:TOP_K]}, expected {question['expect']}")
    lines += ["", "Not first (an expected article is in the top 3, but not first):"]
    for question, found in rows:
        if found[:1] and found[0] not in question["expect"] and set(found[:TOP_K]) & set(
            question["expect"]
        ):
            lines.append(f"  {question['q']!r}: got {found[:TOP_K]}, expected {question['expect']}")
    return top1 / total, top_k / total, "\n".join(lines) + "\n"


def test_search_quality_on_the_real_articles(tmp_path):
    articles = article_paths(KNOWLEDGE) if KNOWLEDGE.is_dir() else []
    if len(articles) < MIN_ARTICLES:
        pytest.skip(
            f"knowledge/ has {len(articles)} articles; the quality bar applies from "
            f"{MIN_ARTICLES} (the content is still being written)"
        )
    kb = KnowledgeBase.open(build_knowledge_base(KNOWLEDGE, tmp_path / "knowledge.db"))
    questions = _questions()
    known = {a.id for a in kb.articles()}
    missing = sorted({i for q in questions for i in q["expect"]} - known)
    assert not missing, f"questions expect articles that do not exist: {missing}"

    rows = [(q, [r.id for r in kb.search(q["q"], limit=TOP_K)]) for q in questions]
    _, hit_rate, text = _report(rows)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    print("\n" + text)
    assert hit_rate >= REQUIRED_HIT_RATE, f"top-{TOP_K} hit rate {hit_rate:.3f}; see {REPORT}"
