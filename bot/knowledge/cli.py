"""`safe-report kb ...`: build, search, check and show the knowledge base.

`bot/cli.py` registers this group with `cli.add_command(kb)`. Defaults come from
`get_settings()`: sources in `<project root>/knowledge`, database at DATA_DIR/knowledge.db.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from bot.settings import get_settings

_SOURCE_HELP = "Folder of articles and contacts.yml (default: knowledge/ in the project)."
_DB_HELP = "Knowledge base file (default: DATA_DIR/knowledge.db)."


def _source(source: Path | None) -> Path:
    return source or get_settings().project_root / "knowledge"


def _db(db: Path | None) -> Path:
    return db or get_settings().knowledge_db


def _open(db: Path | None):
    from bot.knowledge import KnowledgeBase, KnowledgeBaseUnavailable

    try:
        return KnowledgeBase.open(_db(db))
    except KnowledgeBaseUnavailable as error:
        raise click.ClickException(str(error)) from None


@click.group()
def kb() -> None:
    """The knowledge base (articles and contacts from knowledge/)."""


@kb.command()
@click.option("--source", type=click.Path(path_type=Path, file_okay=False), help=_SOURCE_HELP)
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), help=_DB_HELP)
def build(source: Path | None, db: Path | None) -> None:
    """Rebuild the knowledge base from scratch."""
    from bot.knowledge import build_knowledge_base
    from bot.knowledge.store import read_meta

    source, db = _source(source), _db(db)
    try:
        path = build_knowledge_base(source, db, progress=True)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    knowledge = _open(path)
    skipped = json.loads(read_meta(path).get("skipped") or "[]")
    click.echo(
        f"Built {path}: {len(knowledge.articles())} articles, {len(knowledge.contacts())} "
        f"contacts, {len(knowledge.synonyms)} synonyms."
    )
    for problem in skipped:
        click.echo(f"Skipped: {problem}", err=True)
    if skipped:
        click.echo("Run `safe-report kb check` for details.", err=True)


@kb.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--situation", "situations", multiple=True, help="Boost this situation (repeatable).")
@click.option("--nation", type=click.Choice(["england-wales", "scotland", "northern-ireland"]))
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), help=_DB_HELP)
def search(question: str, as_json: bool, limit: int, situations: tuple[str, ...],
           nation: str | None, db: Path | None) -> None:
    """Search the knowledge base, best match first."""
    results = _open(db).search(question, situations=situations, nation=nation, limit=limit)
    if as_json:
        rows = [{"id": r.id, "title": r.title, "score": r.score, "snippet": r.snippet}
                for r in results]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not results:
        click.echo("No matching articles.")
        return
    width = max(len(r.id) for r in results)
    for rank, result in enumerate(results, start=1):
        click.echo(f"{rank}. {result.id:<{width}}  {result.score:8.3f}  {result.title}")
        if result.snippet:
            click.echo(f"   {' ' * width}  {result.snippet}")


@kb.command()
@click.option("--source", type=click.Path(path_type=Path, file_okay=False), help=_SOURCE_HELP)
def check(source: Path | None) -> None:
    """Check articles, contacts and domain.yml responses; exit 1 on errors."""
    from bot.knowledge import check_knowledge

    report = check_knowledge(_source(source))
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)


@kb.command()
@click.argument("article_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), help=_DB_HELP)
def show(article_id: str, as_json: bool, db: Path | None) -> None:
    """Show one article with its placeholders filled in."""
    from bot.knowledge.contacts import LONDON
    from bot.knowledge.render import render_article, render_article_body

    knowledge = _open(db)
    article = knowledge.article(article_id)
    if article is None:
        raise click.ClickException(f"No article {article_id!r}.")
    settings, now = get_settings(), datetime.now(LONDON)
    if not as_json:
        click.echo(render_article(article, knowledge, settings, now))
        return
    contacts = [knowledge.contact(key) for key in article.contacts]
    payload = {
        "id": article.id,
        "title": article.title,
        "summary": article.summary,
        "next_step": article.next_step,
        "situations": list(article.situations),
        "nations": list(article.nations),
        "contacts": [c.describe(now) for c in contacts if c is not None],
        "keywords": list(article.keywords),
        "sources": [{"title": s.title, "url": s.url, "date": s.date.isoformat()}
                    for s in article.sources],
        "last_reviewed": article.last_reviewed.isoformat(),
        "body": render_article_body(article, knowledge, settings, now),
    }
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
