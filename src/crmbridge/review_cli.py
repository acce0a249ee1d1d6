"""The reviewers' commands: the reject list's filters, approve / dismiss / escalate / reopen
(several ids, or every reject a filter selects), replay and stats.

Exit codes as for every command; a change refused for any reject exits 1 after the others
were made (each refusal printed with its reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from crmbridge.cli_support import open_chosen_store, state_option, store_settings
from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.review import Action, ReviewChange, Status, reviewer_name
from crmbridge.review_text import replay_json, replay_text, stats_json, stats_text

__all__ = ["register", "reject_filter", "reject_filter_options"]

F = TypeVar("F", bound=Callable[..., Any])

_STATUSES = [s.value for s in Status]
#: The filter options' names, as the functions they decorate receive them.
FILTER_KEYS = (
    "statuses",
    "include_resolved",
    "criterion",
    "code",
    "stage",
    "contact_id",
    "rule_version",
    "lead_source",
    "tier",
    "assignee",
    "since",
    "until",
    "text",
)
_DAY = click.DateTime(formats=["%Y-%m-%d"])


def reject_filter_options(function: F) -> F:
    """The reject filters, shared by `rejects list` and the bulk actions."""
    options = [
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(_STATUSES),
            help="Only this review status (repeatable; default: open and escalated).",
        ),
        click.option("--all", "include_resolved", is_flag=True, help="Every status."),
        click.option("--criterion", help="Only rejects failing this criterion (e.g. budget)."),
        click.option(
            "--code", help="Only rejects with this error code (e.g. DUPLICATES_DETECTED)."
        ),
        click.option(
            "--stage",
            type=click.Choice(["qualification", "mapping", "salesforce"]),
            help="Only this stage.",
        ),
        click.option("--contact", "contact_id", help="Only this HubSpot contact id."),
        click.option("--rule-version", help="Only decisions made under this rule-set version."),
        click.option("--source", "lead_source", help="Only this lead source (e.g. PAID_SEARCH)."),
        click.option("--tier", help="Only this tier."),
        click.option("--assignee", help="Only rejects escalated to this person or team."),
        click.option("--since", type=_DAY, help="Rejected on or after this day (YYYY-MM-DD)."),
        click.option("--until", type=_DAY, help="Rejected on or before this day (YYYY-MM-DD)."),
        click.option(
            "--search", "text", help="Text found in the contact, e-mail, reasons or values."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def reject_filter(values: dict[str, Any], *, limit: int = 50, offset: int = 0) -> RejectFilter:
    """The ``RejectFilter`` the filter options ask for."""
    since, until = values.get("since"), values.get("until")
    return RejectFilter(
        include_resolved=bool(values.get("include_resolved")),
        statuses=tuple(values["statuses"]) if values.get("statuses") else None,
        criterion=values.get("criterion"),
        code=values.get("code"),
        stage=values.get("stage"),
        contact_id=values.get("contact_id"),
        rule_set_version=values.get("rule_version"),
        lead_source=values.get("lead_source"),
        tier=values.get("tier"),
        assignee=values.get("assignee"),
        since=since.strftime("%Y-%m-%d") if since else None,
        until=until.strftime("%Y-%m-%d") if until else None,
        text=values.get("text"),
        limit=limit,
        offset=offset,
    )


def _filter_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: kwargs.pop(key) for key in FILTER_KEYS if key in kwargs}


def _writable_store(state_url: str | None) -> StateStore:
    return open_chosen_store(state_url, read_only=False)


def _reading_store(state_url: str | None) -> StateStore:
    return open_chosen_store(state_url, read_only=True)


def _no_describe(store: StateStore, object_name: str) -> ConfigError:
    return ConfigError(
        ConfigProblem(
            Location(store.identity().url),
            f"the state store holds no Salesforce describe of {object_name} yet",
            hint="run one pass first (`crmbridge sync --once`): every pass keeps it",
        )
    )


_as_option = click.option(
    "--as",
    "actor",
    default=None,
    help="Who is acting (default: CRMBRIDGE_REVIEWER, else the operating-system user).",
)


def _apply(
    action: Action,
    ids: tuple[int, ...],
    filters: dict[str, Any],
    *,
    state_url: str | None,
    actor: str | None,
    note: str | None,
    assignee: str | None = None,
    dry_run: bool = False,
) -> None:
    """Apply one change to the given ids, or to every reject the filter selects; print one
    line per reject; exit 1 when any was refused."""
    chosen = {k: v for k, v in filters.items() if v}
    if ids and chosen:
        raise click.UsageError("give reject ids or filter options, not both")
    if not ids and not chosen:
        raise click.UsageError(
            "give the reject ids, or filter options (e.g. --criterion budget) for every "
            "reject they select"
        )
    store = _writable_store(state_url)
    try:
        targets = list(ids) or store.reject_ids(reject_filter(filters))
        if not targets:
            click.echo("No rejects match.")
            return
        if dry_run:
            click.echo(f"{len(targets)} rejects match: " + " ".join(map(str, targets)))
            click.echo(f"(dry run: nothing changed; run again without --dry-run to {action})")
            return
        change = ReviewChange(action, reviewer_name(actor), note=note, assignee=assignee)
        results = store.change_review(targets, change)
    finally:
        store.close()
    refused = 0
    for result in results:
        if result.done:
            click.echo(f"{result.reject_id}: {result.from_status} → {result.to_status}")
        else:
            refused += 1
            click.echo(f"{result.reject_id}: refused: {result.message}", err=True)
    done = len(results) - refused
    click.echo(f"{done} changed, {refused} refused (by {change.actor}).")
    if refused:
        raise SystemExit(1)


def _action_command(
    group: click.Group, action: Action, summary: str, *, note_required: bool
) -> None:
    @group.command(action.value, help=summary)
    @state_option
    @_as_option
    @click.argument("ids", nargs=-1, type=int)
    @click.option(
        "--note",
        required=note_required,
        help="Why (kept in the audit trail)." + (" Required." if note_required else ""),
    )
    @click.option("--dry-run", is_flag=True, help="With a filter: list the ids, change nothing.")
    @reject_filter_options
    def command(
        *,
        ids: tuple[int, ...],
        state_url: str | None,
        actor: str | None,
        note: str | None,
        dry_run: bool,
        **kwargs: Any,
    ) -> None:
        _apply(
            action,
            ids,
            _filter_values(kwargs),
            state_url=state_url,
            actor=actor,
            note=note,
            dry_run=dry_run,
        )

    del command


def register(rejects: click.Group) -> None:
    """Add the reviewers' commands to the `rejects` group."""
    _action_command(
        rejects,
        Action.APPROVE,
        "Approve rejects as exceptions: they sync on the next pass despite the rules, "
        "marked as exceptions in the ledger and in Salesforce.",
        note_required=True,
    )
    _action_command(
        rejects, Action.DISMISS, "Dismiss rejects: the lead stays held back.", note_required=True
    )
    _action_command(
        rejects,
        Action.REOPEN,
        "Reopen escalated, excepted (not yet synced) or dismissed rejects.",
        note_required=False,
    )

    @rejects.command("escalate")
    @state_option
    @_as_option
    @click.argument("ids", nargs=-1, type=int)
    @click.option("--to", "assignee", required=True, help="The person or team to escalate to.")
    @click.option("--note", required=True, help="Why (kept in the audit trail). Required.")
    @click.option("--dry-run", is_flag=True, help="With a filter: list the ids, change nothing.")
    @reject_filter_options
    def escalate(
        *,
        ids: tuple[int, ...],
        state_url: str | None,
        actor: str | None,
        assignee: str,
        note: str,
        dry_run: bool,
        **kwargs: Any,
    ) -> None:
        """Escalate rejects to a person or team, with a note; the queue shows its age."""
        _apply(
            Action.ESCALATE,
            ids,
            _filter_values(kwargs),
            state_url=state_url,
            actor=actor,
            note=note,
            assignee=assignee,
            dry_run=dry_run,
        )

    del escalate


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def register_replay_and_stats(rejects: click.Group) -> None:
    """Add `rejects replay` and `rejects stats`."""

    @rejects.command("replay")
    @state_option
    @_as_option
    @click.option(
        "--mappings",
        "mappings_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The rules and map to judge with (default: CRMBRIDGE_MAPPINGS_DIR).",
    )
    @click.option("--apply", "apply_", is_flag=True, help="Mark them for the next pass.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.option("--limit", type=click.IntRange(min=0), default=50, help="Rejects listed.")
    def replay(
        *,
        state_url: str | None,
        actor: str | None,
        mappings_dir: Path | None,
        apply_: bool,
        fmt: str,
        limit: int,
    ) -> None:
        """Judge the open rejects again under the current rules and map, from the state store
        alone (no API call): which would now pass. --apply marks them, and the next pass
        judges them again from the same values and syncs those that pass."""
        from crmbridge.bootstrap import load_config  # noqa: PLC0415
        from crmbridge.reject_replay import replay_rejects  # noqa: PLC0415

        settings = store_settings(state_url)
        config = load_config(mappings_dir or settings.mappings_dir)
        store = _writable_store(state_url) if apply_ else _reading_store(state_url)
        try:
            stored = store.latest_schema(config.mapping.target_object)
            if stored is None:
                raise _no_describe(store, config.mapping.target_object)
            problems = config.check_schema(stored.schema)
            if problems:
                raise ConfigError(problems)
            result = replay_rejects(
                store, config, stored.schema, apply_as=reviewer_name(actor) if apply_ else None
            )
        finally:
            store.close()
        if fmt == "json":
            print_json(replay_json(result))
            return
        click.echo(replay_text(result, limit=limit, applied=apply_))

    @rejects.command("stats")
    @state_option
    @click.option("--since", type=_DAY, help="From this day (YYYY-MM-DD, UTC).")
    @click.option("--until", type=_DAY, help="To this day (included).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    def stats(*, state_url: str | None, since: Any, until: Any, fmt: str) -> None:
        """Rejects by criterion and by week; by lead source, the share of each source's leads
        that qualify (by each contact's latest decision)."""
        from crmbridge.review_stats import day_after, reject_stats  # noqa: PLC0415

        store = _reading_store(state_url)
        try:
            result = reject_stats(
                store,
                since=since.strftime("%Y-%m-%d") if since else "0000",
                until=day_after(until.strftime("%Y-%m-%d")) if until else "9999",
            )
        finally:
            store.close()
        if fmt == "json":
            print_json(stats_json(result))
            return
        click.echo(stats_text(result))

    del replay, stats
