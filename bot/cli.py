"""The `safe-report` command. Each subcommand is a thin call into the Python API.

    safe-report run            build what is stale, train if needed, start everything
    safe-report train          train a model for the current data (--force to retrain)
    safe-report nlp build      build the project's spaCy pipelines
    safe-report purge          delete everything past its retention period, now
    safe-report forget ID      delete one conversation now
    safe-report kb ...         the knowledge base (build, search, check, show)
    safe-report inbox ...      the review inbox (list, export, clear)
    safe-report handoffs ...   handoffs to the advice line (list, show, export)
    safe-report staff ...      staff accounts for the review app (add-user, ...)
"""

from __future__ import annotations

import sys

import click

from bot.handoff.cli import handoffs, staff
from bot.inbox.cli import inbox
from bot.knowledge.cli import kb
from bot.settings import get_settings, load_settings


@click.group()
@click.version_option(package_name="safe-report")
def cli() -> None:
    """safe-report: triage chatbot for victims and witnesses of crime. Care don't share."""


@cli.command()
@click.option("--no-train", is_flag=True, help="Serve the newest model even if data changed.")
def run(no_train: bool) -> None:
    """Build what is stale, train if there is no model for the current data, start the stack."""
    from bot.stack import ensure_secrets, run_stack
    from bot.training import newest_model, train

    written = ensure_secrets(get_settings().project_root)
    if written:
        click.echo(f"Wrote new secrets to .env: {', '.join(written)}")
    settings = load_settings()
    _build_knowledge(settings)
    model = newest_model(settings) if no_train else train(settings)
    if model is None:
        raise click.ClickException("No model found. Run `safe-report train` first.")
    click.echo(f"Serving {model.name}")
    click.echo(
        f"Chat page: http://{settings.bind_host}:{settings.web_port}/  "
        f"REST: http://{settings.bind_host}:{settings.rasa_port}/webhooks/rest/webhook"
    )
    sys.exit(run_stack(settings, model))


@cli.command(name="train")
@click.option("--force", is_flag=True, help="Train even if a model for this data exists.")
def train_command(force: bool) -> None:
    """Train a Rasa model from bot/data with fixed seeds."""
    from bot.training import train

    model = train(get_settings(), force=force)
    click.echo(f"Model: {model}")


@cli.group()
def nlp() -> None:
    """The project's own spaCy pipelines."""


@nlp.command(name="build")
@click.option("--force", is_flag=True)
def nlp_build(force: bool) -> None:
    """Build build/spacy/safe_report_nlu and bot/data/nlu/synonyms.yml from the patterns."""
    from bot.training import build_nlp

    path = build_nlp(get_settings(), force=force)
    click.echo(f"Built {path}")


@cli.command()
@click.argument("sender_id")
def forget(sender_id: str) -> None:
    """Delete one conversation (all its events) now."""
    from bot.tracker_store import ConversationStore

    removed = ConversationStore().delete(sender_id)
    click.echo(f"Deleted {removed} events.")


@cli.command()
def purge() -> None:
    """Delete everything past its retention period now (the running stack does it on a schedule)."""
    from bot.retention import purge_all

    for store, count in purge_all(get_settings()).items():
        click.echo(f"{store}: {count} removed")


def _build_knowledge(settings) -> None:
    from bot.knowledge import build_knowledge_base
    from bot.knowledge.store import is_stale

    source = settings.project_root / "knowledge"
    if is_stale(source, settings.knowledge_db):
        build_knowledge_base(source, settings.knowledge_db, progress=True)


# Subcommand groups live beside their modules, each mirroring that module's API.
cli.add_command(kb)
cli.add_command(inbox)
cli.add_command(handoffs)
cli.add_command(staff)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
