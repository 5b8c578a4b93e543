"""`safe-report inbox`: the review inbox, from the command line (mirrors bot.inbox.InboxStore)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.inbox.store import InboxStore


@click.group()
def inbox() -> None:
    """Messages the bot was unsure of (redacted, unlinked), for retraining."""


@inbox.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--pending", is_flag=True, help="Only items not exported yet.")
def list_items(as_json: bool, pending: bool) -> None:
    """List inbox items, most frequent first."""
    items = InboxStore().items(include_exported=not pending)
    if as_json:
        click.echo(json.dumps([item.__dict__ for item in items], indent=2, ensure_ascii=False))
        return
    for item in items:
        mark = "exported" if item.exported else "new"
        click.echo(f"{item.count:>4}x  {item.confidence:.2f}  {item.predicted_intent:<28} {mark:<8} {item.text}")
    click.echo(f"{len(items)} items")


@inbox.command(name="export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the YAML here (default: print it).")
def export_items(out: Path | None) -> None:
    """Write new items as Rasa NLU YAML (guessed intent as the proposed label)."""
    text = InboxStore().export_yaml()
    if out:
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out}")
    else:
        click.echo(text, nl=False)


@inbox.command(name="clear")
@click.option("--all", "everything", is_flag=True, help="Also items not exported yet.")
def clear_items(everything: bool) -> None:
    """Delete exported items (or all items with --all)."""
    removed = InboxStore().clear(exported_only=not everything)
    click.echo(f"Removed {removed} items.")
