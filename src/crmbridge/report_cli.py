"""`crmbridge report audit` (a month's or a quarter's audit, CSV or one HTML page) and
`crmbridge users` (the console's accounts)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crmbridge.cli_support import open_chosen_store, open_deployment_store, state_option
from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.ports import StateStore
from crmbridge.users import Role, hash_password, password_problem

__all__ = ["register"]

_state_url_option = click.option(
    "--state-url", default=None, help="State store URL (default: CRMBRIDGE_STATE_URL)."
)


def _store(state_url: str | None, *, read_only: bool) -> StateStore:
    return open_chosen_store(state_url, read_only=read_only)


def _users_store(state_url: str | None, *, read_only: bool) -> StateStore:
    return open_deployment_store(state_url, read_only=read_only)


def register(main: click.Group) -> None:
    """Add the `report` and `users` groups to the main command."""
    main.add_command(report)
    main.add_command(users)


@click.group()
def report() -> None:
    """Reports for auditors, from the state store alone."""


@report.command("audit")
@state_option
@click.option("--month", help="The month, YYYY-MM (e.g. 2026-11).")
@click.option("--quarter", help="The quarter, YYYY-Qn (e.g. 2026-Q4).")
@click.option("--format", "fmt", type=click.Choice(["html", "csv"]), default="html")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (default: standard output).",
)
def audit(
    *, state_url: str | None, month: str | None, quarter: str | None, fmt: str, out: Path | None
) -> None:
    """What passed and what was held back in a month or a quarter, by tier, criterion and lead
    source; exceptions granted and by whom; escalations open; Salesforce errors. HTML is one
    self-contained page with its charts drawn in (no network needed to view it)."""
    from crmbridge.audit_report import audit_csv, audit_html  # noqa: PLC0415 - matplotlib
    from crmbridge.review_stats import audit_figures  # noqa: PLC0415
    from crmbridge.review_stats import month as month_period  # noqa: PLC0415
    from crmbridge.review_stats import quarter as quarter_period  # noqa: PLC0415

    if (month is None) == (quarter is None):
        raise click.UsageError("give one period: --month YYYY-MM or --quarter YYYY-Qn")
    try:
        period = month_period(month) if month else quarter_period(quarter or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    store = _store(state_url, read_only=True)
    try:
        figures = audit_figures(store, period)
    finally:
        store.close()
    text = audit_csv(figures) if fmt == "csv" else audit_html(figures)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8", newline="")
    click.echo(f"wrote {out} ({period.name}, {fmt})", err=True)


@click.group()
def users() -> None:
    """Console accounts: viewers read, reviewers act on rejects, admins manage users."""


def _password(prompt: bool) -> str:
    """A new password: asked twice at a terminal, else the first line of standard input."""
    if prompt and sys.stdin.isatty():
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(password)
    if problem is not None:
        raise ConfigError(
            ConfigProblem(Location("the password given"), problem, hint="choose a longer one")
        )
    return password


_role_option = click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="viewer (reads), reviewer (acts on rejects), admin (also manages users).",
)


@users.command("add")
@_state_url_option
@click.argument("name")
@_role_option
def users_add(*, state_url: str | None, name: str, role: str) -> None:
    """Add a user; the password is asked for (or read from standard input's first line)."""
    if not name.strip() or name != name.strip():
        raise click.BadParameter("a name cannot be empty or start or end with a space")
    password = _password(prompt=True)
    store = _users_store(state_url, read_only=False)
    try:
        if not store.save_user(name, role, hash_password(password), new=True):
            raise click.ClickException(f"a user named {name!r} exists (`users passwd`)")
    finally:
        store.close()
    click.echo(f"added {name} ({role})")


@users.command("passwd")
@_state_url_option
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), help="Also change the role.")
def users_passwd(*, state_url: str | None, name: str, role: str | None) -> None:
    """Set a user's password (and, with --role, their role)."""
    store = _users_store(state_url, read_only=False)
    try:
        user = store.user(name)
        if user is None:
            raise click.ClickException(f"no user named {name!r} (`users list`)")
        password = _password(prompt=True)
        store.save_user(name, role or user.role, hash_password(password), new=False)
    finally:
        store.close()
    click.echo(f"changed {name}'s password" + (f" and role ({role})" if role else ""))


@users.command("list")
@_state_url_option
def users_list(*, state_url: str | None) -> None:
    """Every user with their role."""
    from crmbridge.text import visible  # noqa: PLC0415

    store = _users_store(state_url, read_only=True)
    try:
        accounts = store.users()
    finally:
        store.close()
    if not accounts:
        click.echo("No users. `crmbridge users add NAME --role reviewer` adds one.")
        return
    click.echo(f"{'NAME':<24} {'ROLE':<9} CREATED")
    for user in accounts:
        click.echo(visible(f"{user.name:<24} {user.role:<9} {user.created_at[:19]}"))


@users.command("remove")
@_state_url_option
@click.argument("name")
def users_remove(*, state_url: str | None, name: str) -> None:
    """Remove a user (their audit entries stay, under their name)."""
    store = _users_store(state_url, read_only=False)
    try:
        removed = store.remove_user(name)
    finally:
        store.close()
    if not removed:
        raise click.ClickException(f"no user named {name!r}")
    click.echo(f"removed {name}")
