"""`safe-report handoffs ...` and `safe-report staff ...` (registered by bot.cli).

    safe-report handoffs list [--status new|in_progress|closed] [--json]
    safe-report handoffs show REF [--json]
    safe-report handoffs export REF [--format md|json]
    safe-report staff add-user NAME --role staff|admin     (asks for the password twice)
    safe-report staff disable-user NAME
    safe-report staff list-users

Handoff commands are audited like the staff app, with actor "cli:<os user>". No command
prints a contact detail in full: `show` and `export` give the masked form.
"""

from __future__ import annotations

import getpass
import json

import click

from bot.handoff.store import (
    STATUSES,
    HandoffNotFound,
    HandoffStore,
    label,
    to_timestamp,
    utc_now,
)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli:unknown"


def _store() -> HandoffStore:
    return HandoffStore()


@click.group()
def handoffs() -> None:
    """Handoffs to the advice line (the same records staff see at /staff)."""


@handoffs.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
def list_handoffs(status: str | None, limit: int, as_json: bool) -> None:
    """Newest handoffs first."""
    with _store() as store:
        rows = store.list(status=status, limit=limit, actor=_actor())
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No handoffs.")
        return
    for row in rows:
        click.echo(
            f"{row['reference']}  {row['created_at'][:16].replace('T', ' ')}  "
            f"{label('status', row['status']):<11}  {label('what_happened', row['what_happened'])}"
            f"  ({label('nation', row['nation'])})"
        )


def _load(store: HandoffStore, reference: str, fn) -> dict | str:
    try:
        return fn(reference, _actor())
    except HandoffNotFound:
        raise click.ClickException(f"No handoff {reference!r}.") from None


@handoffs.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
def show(reference: str, as_json: bool) -> None:
    """One handoff (contact detail masked). Audited as a view."""
    with _store() as store:
        handoff = _load(store, reference, store.get)
    if as_json:
        click.echo(json.dumps(handoff, indent=2, ensure_ascii=False))
        return
    s = handoff["situation"]
    click.echo(f"Handoff {handoff['reference']}  ({label('status', handoff['status'])})")
    for title, value in (
        ("Made", handoff["created_at"][:16].replace("T", " ") + " UTC"),
        ("Assigned to", handoff["assigned_to"] or "nobody"),
        ("Where", label("nation", handoff["nation"])),
        ("Who", label("role", s.get("role"))),
        ("What happened", label("what_happened", s.get("what_happened"))),
        ("Danger now", label("danger_now", s.get("danger_now"))),
        ("Contact", label("contact_method", handoff["contact_method"])),
        ("Detail", handoff["contact_detail_masked"] or "none given"),
        ("Safe times", handoff["safe_times"] or "Not given"),
        ("Leave a message", label("may_leave_message", handoff["may_leave_message"])),
        ("Say who is calling", label("may_say_who", handoff["may_say_who"])),
    ):
        click.echo(f"  {title + ':':<20}{value}")
    click.echo(f"  {len(handoff['transcript'])} transcript turns, {len(handoff['notes'])} notes")


@handoffs.command()
@click.argument("reference")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md",
              show_default=True)
def export(reference: str, fmt: str) -> None:
    """Print a handoff for the advice-line case system (masked contact detail)."""
    with _store() as store:
        if fmt == "md":
            click.echo(_load(store, reference, store.export_markdown), nl=False)
        else:
            data = _load(store, reference, lambda ref, actor: store.export(ref, actor))
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group()
def staff() -> None:
    """Staff accounts for the review app at /staff."""


def _accounts():
    from bot.web.staff.accounts import StaffAccounts

    return StaffAccounts(_store())


@staff.command(name="add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["staff", "admin"]), default="staff",
              show_default=True)
def add_user(name: str, role: str) -> None:
    """Create a staff account (asks for the password twice; at least 12 characters)."""
    from bot.web.staff.accounts import AccountError, check_password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(password, name)
        accounts = _accounts()
        try:
            accounts.add_user(name, password, role)
        finally:
            accounts.store.close()
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Added {name.strip().lower()} ({role}).")


@staff.command(name="disable-user")
@click.argument("name")
def disable_user(name: str) -> None:
    """Stop a user signing in and end their sessions now."""
    from bot.web.staff.accounts import AccountError

    accounts = _accounts()
    try:
        accounts.disable_user(name.strip().lower())
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    finally:
        accounts.store.close()
    click.echo(f"Disabled {name}.")


@staff.command(name="list-users")
def list_users() -> None:
    """Every staff account and its state."""
    accounts = _accounts()
    try:
        users = accounts.list_users()
    finally:
        accounts.store.close()
    if not users:
        click.echo("No staff users. Add one with: safe-report staff add-user NAME --role admin")
    now = to_timestamp(utc_now())
    for user in users:
        locked = user["locked_until"] and user["locked_until"] > now
        state = "disabled" if user["disabled"] else (
            f"locked until {user['locked_until'][:16].replace('T', ' ')} UTC" if locked
            else "active")
        click.echo(f"{user['username']:<24} {user['role']:<6} {state}")
