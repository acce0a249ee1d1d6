"""The ``crmbridge`` command: run, sync, demo, rejects, flagged, whatif, validate, mappings,
status, state, config, sandbox.

Exit codes: 0 done; 1 a pass stopped early (budget, outage, the state store lost mid-pass, a
stop request, a refusal other than of credentials such as TLS trust or API_DISABLED_FOR_ORG:
the cursor is kept), or HubSpot/Salesforce could not be used at start, by ``validate`` or by
``mappings init`` for any reason but refused credentials; 2 a setting or mapping file is wrong
(each problem printed with its location and a hint), no state store where the settings point
(``crmbridge state init`` makes one; ``sync`` and ``run`` never do), or (``whatif``) no
Salesforce describe kept in the store yet; 3 credentials refused (only
that); 4 one pass (``sync --once``) crashed on an unexpected error, a bug (the cursor is kept;
the log has the traceback); ``run`` never exits on a crashed pass: it retries; 5 the state store
is unusable (read-only, a directory, not a database, truncated or corrupted, a PostgreSQL server
that refuses the connection): the message names it and says what to do; neither ``run`` nor
``sync`` retries it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
import structlog

from crmbridge import reports
from crmbridge.bootstrap import check_against_salesforce, load_config
from crmbridge.cli_support import (
    PIPELINE_META,
    chosen_pipeline,
    cli_settings,
    configured_pipelines,
    open_reading_store,
    say,
    state_option,
    store_settings,
)
from crmbridge.daemon import (
    EXIT_CONFIG,
    EXIT_FATAL,
    EXIT_STATE_STORE,
    EXIT_STOPPED_EARLY,
    install_signal_handlers,
)
from crmbridge.errors import (
    AuthenticationError,
    ConfigError,
    ConfigProblem,
    FatalApiError,
    Location,
    RequestRejectedError,
    RetryableApiError,
    StateStoreError,
    StateStoreMissingError,
)
from crmbridge.logs import configure_logging
from crmbridge.model import PassSummary
from crmbridge.redaction import redact
from crmbridge.report_cli import register as register_report_commands
from crmbridge.review_cli import register as register_review_commands
from crmbridge.review_cli import register_replay_and_stats, reject_filter, reject_filter_options
from crmbridge.runner import run_service
from crmbridge.settings import Settings
from crmbridge.state import DEFAULT_PIPELINE, open_store, schema_revisions

log = structlog.get_logger(__name__)

#: A what-if judges in parallel from this many contacts up, with at most this many processes.
WHATIF_PARALLEL_FROM = 20_000
WHATIF_MAX_JOBS = 4


@contextmanager
def _config_errors() -> Iterator[None]:
    """Print a ConfigError as the admin needs it (file:line, hint) and exit 2, and an unusable
    state store (what is wrong, where, what to do) and exit 5; no traceback."""
    try:
        yield
    except ConfigError as exc:
        say(f"crmbridge: configuration error ({len(exc.problems)} problem(s))")
        for problem in exc.problems:
            say(f"  {problem.location}: {problem.message}")
            if problem.hint:
                say(f"    hint: {problem.hint}")
        raise SystemExit(EXIT_CONFIG) from None
    except StateStoreError as exc:
        say("crmbridge: state store unusable")
        say(f"  state store {exc.location}: {exc.problem}")
        say(f"    hint: {exc.hint}")
        raise SystemExit(EXIT_STATE_STORE) from None


class CommandGroup(click.Group):
    """The command group: a ConfigError raised anywhere in any command exits 2 with its
    locations and hints, an unusable state store exits 5 naming it, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        with _config_errors():
            return super().invoke(ctx)


_API_ERRORS = (FatalApiError, RetryableApiError, RequestRejectedError)


def _exit_on_api_error(what: str, exc: Exception) -> NoReturn:
    """Print why a remote call failed; exit 3 when credentials were refused, else 1."""
    say(f"crmbridge: {what}: {exc}")
    raise SystemExit(
        EXIT_FATAL if isinstance(exc, AuthenticationError) else EXIT_STOPPED_EARLY
    ) from None


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crmbridge")
def main() -> None:
    """Move qualified leads from HubSpot to Salesforce; log every reject with its reasons."""


# -- syncing ------------------------------------------------------------------------------------
def _run(once: bool, *, dry_run: bool = False, pipeline: str | None = None) -> None:
    settings = cli_settings()
    configure_logging(settings.log_format, settings.log_level)
    specs = configured_pipelines(settings, pipeline)
    stop = threading.Event()
    install_signal_handlers(stop)
    several = len(specs) > 1

    def echo_summary(name: str, summary: PassSummary) -> None:
        text = reports.summary_text(summary)
        click.echo(redact(f"pipeline {name}\n{text}" if several else text))

    with _logged_store_errors():
        try:
            code = run_service(
                settings,
                specs,
                stop=stop,
                once=once,
                dry_run=dry_run,
                on_pass=echo_summary if once or dry_run else None,
            )
        except _API_ERRORS as exc:
            _exit_on_api_error("cannot start", exc)
    raise SystemExit(code)


@main.command()
@click.option("--state-url", default=None, help="State store URL (default: CRMBRIDGE_STATE_URL).")
@click.option(
    "--host", default=None, help="Address to serve on (default: CRMBRIDGE_CONSOLE__HOST)."
)
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port (default: CRMBRIDGE_CONSOLE__PORT; 0: any free one).",
)
@click.option(
    "--pipeline",
    default=None,
    help="Whose reject log to show (default: CRMBRIDGE_CONSOLE__PIPELINE, `default`).",
)
def console(
    state_url: str | None, host: str | None, port: int | None, pipeline: str | None
) -> None:
    """Serve the reviewer console until SIGTERM/SIGINT (users: `crmbridge users add`)."""
    from crmbridge.console.serve import start_console  # noqa: PLC0415 - Flask only here

    settings = store_settings(state_url)
    chosen = {
        k: v for k, v in (("host", host), ("port", port), ("pipeline", pipeline)) if v is not None
    }
    settings = settings.model_copy(update={"console": settings.console.model_copy(update=chosen)})
    configure_logging(settings.log_format, settings.log_level)
    stop = threading.Event()
    install_signal_handlers(stop)
    served = start_console(settings)
    click.echo(f"Reviewer console at {served.url} (Ctrl-C stops it)", err=True)
    try:
        stop.wait()
    finally:
        served.close()


@contextmanager
def _logged_store_errors() -> Iterator[None]:
    """Log an unusable state store as the error that stopped the daemon (ops read the log)."""
    try:
        yield
    except StateStoreError as exc:
        log.error("state_store_unusable", store=exc.location, problem=exc.problem, hint=exc.hint)  # noqa: TRY400 - the message says it all
        raise


@main.command()
@click.option("--pipeline", default=None, help="Run only this pipeline (default: every one).")
def run(pipeline: str | None) -> None:
    """Run as a daemon: a pass every CRMBRIDGE_POLL_INTERVAL_S seconds until SIGTERM/SIGINT,
    for every configured pipeline, each while it holds its lease."""
    _run(once=False, pipeline=pipeline)


@main.command()
@click.option("--once", is_flag=True, help="Run one pass and exit (without it: like `run`).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Judge what changed and count what would be created, updated or rejected; "
    "push nothing, write no state (implies --once).",
)
@click.option("--pipeline", default=None, help="Sync only this pipeline (default: every one).")
def sync(once: bool, dry_run: bool, pipeline: str | None) -> None:
    """Sync HubSpot contacts to Salesforce Leads through the qualification gate."""
    _run(once=once, dry_run=dry_run, pipeline=pipeline)


@main.command()
@click.option("--contacts", default=300, show_default=True, help="Contacts to seed in HubSpot.")
@click.option(
    "--state-url",
    default="sqlite:///crmbridge-demo.db",
    show_default=True,
    help="State store for the demo (recreated on every demo run).",
)
def demo(contacts: int, state_url: str) -> None:
    """Full sync against the built-in HubSpot and Salesforce simulators, with a summary."""
    from crmbridge.demo import run_demo  # noqa: PLC0415 - simulators load only for the demo

    settings = cli_settings(state_url=state_url)
    configure_logging("console", "WARNING")
    raise SystemExit(run_demo(settings, contacts=contacts, echo=click.echo))


# -- the reject log -----------------------------------------------------------------------------
@main.group()
def rejects() -> None:
    """Work the reject log: why each lead was held back, by which rule-set version; approve,
    dismiss, escalate, reopen, replay, stats."""


@rejects.command("list")
@state_option
@reject_filter_options
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Rows to show."
)
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, help="Rows to skip (newest first)."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
def rejects_list(
    *, state_url: str | None, limit: int, offset: int, fmt: str, **filters: Any
) -> None:
    """List rejected leads, newest first: the queue (open and escalated) unless --status or
    --all says otherwise."""
    store = open_reading_store(state_url)
    query = reject_filter(filters, limit=limit, offset=offset)
    try:
        records = store.rejects(query)
        total = store.count_rejects(query)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps([reports.reject_json(r) for r in records], indent=2))
        return
    if fmt == "csv":
        click.echo(reports.rejects_csv(records), nl=False)
        return
    click.echo(reports.rejects_table(records, total=total, offset=offset))


@rejects.command("show")
@state_option
@click.argument("reject_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def rejects_show(state_url: str | None, reject_id: int, fmt: str) -> None:
    """Show one reject: every failed criterion, the inputs it read, the rule-set version."""
    store = open_reading_store(state_url)
    try:
        record = store.reject(reject_id)
        trail = store.audit_trail(reject_id)
    finally:
        store.close()
    if record is None:
        raise click.ClickException(f"no reject with id {reject_id} (see `crmbridge rejects list`)")
    if fmt == "json":
        shown = reports.reject_json(record)
        shown["review"] = [reports.audit_json(entry) for entry in trail]
        click.echo(json.dumps(shown, indent=2))
    else:
        click.echo(reports.reject_text(record, trail))


# -- admin helpers ------------------------------------------------------------------------------
@main.command()
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None)
@click.option(
    "--files-only",
    is_flag=True,
    help="Check the files alone, not against Salesforce's describe.",
)
@click.option("--pipeline", default=None, help="Check only this pipeline's files.")
def validate(mappings_dir: Path | None, files_only: bool, pipeline: str | None) -> None:
    """Check the files under mappings/ (and, when Salesforce's settings are there, the map
    against Salesforce's live describe); print every problem with file:line and a hint. With
    CRMBRIDGE_PIPELINES_FILE, the files (and Salesforce) of every pipeline.

    Exit 2 for a problem; 3 when Salesforce refuses the credentials; 1 when it cannot be
    reached (the files themselves are then fine)."""
    settings = cli_settings()
    targets: list[tuple[str | None, Settings]] = [(None, settings)]
    if mappings_dir is None and (settings.pipelines_file is not None or pipeline is not None):
        targets = [(spec.name, spec.settings) for spec in configured_pipelines(settings, pipeline)]
    stop = threading.Event()
    install_signal_handlers(stop)
    for name, chosen in targets:
        if name is not None:
            click.echo(f"pipeline {name}")
        directory = mappings_dir or chosen.mappings_dir
        config = load_config(directory)
        click.echo(
            f"{directory}: OK — {len(config.mapping.source_properties)} HubSpot properties "
            f"mapped onto {config.mapping.target_object}; rule set {config.rules.name!r} "
            f"version {config.rules.version}"
        )
        if files_only:
            click.echo("only the files were checked (--files-only)")
            continue
        try:
            checked = check_against_salesforce(chosen, config, stop=stop)
        except _API_ERRORS as exc:
            _exit_on_api_error(
                "the files are fine, but the map could not be checked against Salesforce", exc
            )
        click.echo(checked)


@main.command()
@state_option
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The proposed qualification rules (default: qualification.yaml of --mappings).",
)
@click.option(
    "--mappings",
    "mappings_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The proposed field and stage map (default: CRMBRIDGE_MAPPINGS_DIR).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Flipped contacts the table lists.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that judge a large store in parallel (default: the CPUs, at most 4).",
)
def whatif(
    *,
    state_url: str | None,
    rules_file: Path | None,
    mappings_dir: Path | None,
    fmt: str,
    limit: int,
    jobs: int | None,
) -> None:
    """Replay proposed rules (and map) over the latest stored decision of every contact: how
    many leads would flip each way, by criterion, lead source and stage. Reads the state
    store only: no API call, nothing written (`sync --dry-run` is the live counterpart)."""
    from crmbridge.whatif import StoreAddress, replay_store  # noqa: PLC0415 - only this one
    from crmbridge.whatif_report import whatif_json, whatif_text  # noqa: PLC0415

    if rules_file is None and mappings_dir is None:
        raise click.UsageError("give the proposal: --rules FILE and/or --mappings DIR")
    settings = store_settings(state_url)
    default_dir = _pipeline_settings(settings, chosen_pipeline(settings)).mappings_dir
    config = load_config(mappings_dir or default_dir, rules_file=rules_file)
    store = open_reading_store(state_url)
    try:
        stored = store.latest_schema(config.mapping.target_object)
        if stored is None:
            raise ConfigError(
                ConfigProblem(
                    Location(store.identity().url),
                    f"the state store holds no Salesforce describe of "
                    f"{config.mapping.target_object} yet",
                    hint="run one pass first (`crmbridge sync --once`): every pass keeps it",
                )
            )
        problems = config.check_schema(stored.schema)
        if problems:
            raise ConfigError(problems)
        identity = store.identity()
        contacts = sum(store.outcome_counts().values())
        workers = jobs or min(os.cpu_count() or 1, WHATIF_MAX_JOBS)
        result = replay_store(
            store,
            config,
            stored.schema,
            address=StoreAddress(settings.state_url, identity.pipeline),
            # Starting the processes costs about a second: worth it on a large store only.
            workers=workers if contacts >= WHATIF_PARALLEL_FROM else 1,
            describe_fetched_at=stored.fetched_at,
        )
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(whatif_json(result), indent=2))
    else:
        click.echo(whatif_text(result, limit=limit))


@main.command()
@state_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Rows to show."
)
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, help="Rows to skip (newest first)."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def flagged(state_url: str | None, limit: int, offset: int, fmt: str) -> None:
    """Leads synced with a placeholder or without a bad value (fields.yaml `incomplete`),
    newest first: the values a reviewer should fix in HubSpot or Salesforce."""
    store = open_reading_store(state_url)
    try:
        records = store.flagged(limit=limit, offset=offset)
        total = store.count_flagged()
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps([reports.flagged_json(r) for r in records], indent=2))
        return
    click.echo(reports.flagged_table(records, total=total, offset=offset))


@main.group()
def mappings() -> None:
    """Help for editing mappings/: JSON Schemas for editors, a starter map."""


@mappings.command("schema")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to write into (default: schema/ under CRMBRIDGE_MAPPINGS_DIR).",
)
def mappings_schema(out: Path | None) -> None:
    """Write the JSON Schemas of qualification.yaml, fields.yaml and stages.yaml, which editors
    use to complete and check keys as you type (see the files' first line)."""
    from crmbridge.schemas import SCHEMA_DIR, write_schemas  # noqa: PLC0415 - only here

    directory = out or cli_settings().mappings_dir / SCHEMA_DIR
    for path in write_schemas(directory):
        click.echo(f"wrote {path}")


@mappings.command("init")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("mappings"),
    show_default=True,
    help="Directory to write the starter files into.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist there.")
def mappings_init(out: Path, force: bool) -> None:
    """Write a commented starter map (fields.yaml, stages.yaml, qualification.yaml) from
    HubSpot's contact properties and the Salesforce Lead describe: one call to each."""
    from crmbridge.bootstrap import metadata_clients  # noqa: PLC0415 - only here
    from crmbridge.schemas import SCHEMA_DIR, write_schemas  # noqa: PLC0415
    from crmbridge.starter import starter_map  # noqa: PLC0415

    names = ("fields.yaml", "stages.yaml", "qualification.yaml")
    taken = [out / name for name in names if (out / name).exists()]
    if taken and not force:
        raise ConfigError(
            [
                ConfigProblem(Location(str(path)), "already exists", hint="use --force")
                for path in taken
            ]
        )
    settings = cli_settings()
    configure_logging(settings.log_format, "WARNING")
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        clients = metadata_clients(settings, stop=stop)
        try:
            schema = clients.sink.describe()
            props = clients.source.contact_properties()
        finally:
            clients.close()
    except _API_ERRORS as exc:
        _exit_on_api_error("cannot read the metadata", exc)
    starter = starter_map(schema, props)
    out.mkdir(parents=True, exist_ok=True)
    files = {"fields.yaml": starter.fields, "qualification.yaml": starter.qualification}
    if starter.stages is not None:
        files["stages.yaml"] = starter.stages
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out / name}")
    write_schemas(out / SCHEMA_DIR)
    click.echo(
        f"{starter.paired} {schema.name} fields paired with HubSpot properties; "
        f"{len(starter.unpaired_fields)} left for you (listed at the end of fields.yaml). "
        f"Check every line, then run `crmbridge validate --mappings-dir {out}`."
    )


@main.command()
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def status(state_url: str | None, fmt: str) -> None:
    """Where each pipeline stands: cursor, lag, ledger counts, the last pass (result, counts,
    API calls), API headroom, and which replica holds its lease."""
    from crmbridge.status_report import status_json, status_text  # noqa: PLC0415 - only here

    settings = store_settings(state_url)
    first = open_store(settings.state_url, read_only=True)
    stores = [first]
    try:
        for name in first.pipelines():
            if name != first.identity().pipeline:
                stores.append(open_store(settings.state_url, pipeline=name, read_only=True))
        if fmt == "json":
            click.echo(json.dumps(status_json(stores), indent=2))
        else:
            click.echo(status_text(stores))
    finally:
        for store in stores:
            store.close()


@main.group()
def state() -> None:
    """Create and inspect the state store (cursor, ledger, reject log)."""


@state.command("init")
@state_option
def state_init(state_url: str | None) -> None:
    """Create a new state store where CRMBRIDGE_STATE_URL points (sync and run never do), with
    the state of every configured pipeline (or of --pipeline)."""
    settings = store_settings(state_url)
    for name in _init_names(settings):
        try:
            store = open_store(settings.state_url, pipeline=name)
            verb = "A state store already exists; nothing changed."
        except StateStoreMissingError:
            store = open_store(settings.state_url, create=True, pipeline=name)
            verb = "Created a new state store."
        try:
            click.echo(verb)
            click.echo(reports.identity_text(store.identity()))
        finally:
            store.close()


def _pipeline_settings(settings: Settings, name: str) -> Settings:
    """The settings of pipeline ``name`` (the environment's without a pipelines file)."""
    if settings.pipelines_file is None:
        return settings
    return configured_pipelines(settings, name)[0].settings


def _init_names(settings: Settings) -> list[str]:
    name: str | None = click.get_current_context().meta.get(PIPELINE_META)
    if name is not None or settings.pipelines_file is None:
        return [name or DEFAULT_PIPELINE]
    return [spec.name for spec in configured_pipelines(settings, None)]


@state.command("upgrade")
@state_option
def state_upgrade(state_url: str | None) -> None:
    """Apply pending schema migrations (every command does on start; this does only that)."""
    settings = store_settings(state_url)
    open_store(settings.state_url, pipeline=chosen_pipeline(settings)).close()
    current, head = schema_revisions(settings.state_url)
    click.echo(f"schema revision {current} (newest known: {head})")


@state.command("current")
@state_option
def state_current(state_url: str | None) -> None:
    """Print the store's schema revision and the newest this crmbridge knows; migrate nothing."""
    settings = store_settings(state_url)
    current, head = schema_revisions(settings.state_url)
    shown = current or "none (empty, or from before schema revisions: opening it upgrades it)"
    click.echo(f"schema revision {shown} (newest known: {head})")


@main.group()
def config() -> None:
    """Show the effective configuration."""


@config.command("show")
def config_show() -> None:
    """Print the settings every pipeline would use, secrets masked: the environment's alone
    (pipeline ``default``), or each pipeline of CRMBRIDGE_PIPELINES_FILE merged with it."""
    settings = cli_settings()
    shown = {
        "pipelines_file": str(settings.pipelines_file) if settings.pipelines_file else None,
        "pipelines": {
            spec.name: spec.settings.redacted() for spec in configured_pipelines(settings, None)
        },
    }
    click.echo(redact(json.dumps(shown, indent=2)))


@config.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the pipelines file (CRMBRIDGE_PIPELINES_FILE), for editors:
    save it beside the file and point a `# yaml-language-server: $schema=…` line at it."""
    from crmbridge.pipelines import json_schema  # noqa: PLC0415 - only here

    click.echo(json.dumps(json_schema(), indent=2))


# -- simulators ---------------------------------------------------------------------------------
@main.group()
def sandbox() -> None:
    """The built-in HubSpot and Salesforce simulators."""


@sandbox.command("serve")
@click.option("--contacts", default=300, show_default=True)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the CRMBRIDGE_ variables to this file (for `run` / .env).",
)
def sandbox_serve(contacts: int, env_file: Path | None) -> None:
    """Serve both simulators until Ctrl-C and print the variables that point crmbridge at them."""
    from crmbridge.sandbox.runtime import Sandbox  # noqa: PLC0415 - only this command needs it

    stop = threading.Event()
    install_signal_handlers(stop)
    with Sandbox(contacts=contacts, ca_dir=Path(os.getcwd()) / ".crmbridge-sandbox") as box:
        lines = [f"{key}={value}" for key, value in box.environment().items()]
        click.echo("Simulators are up. Point crmbridge at them with:\n")
        for line in lines:
            click.echo(f"  export {line}")
        if env_file is not None:
            env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            click.echo(f"\n(also written to {env_file})")
        click.echo("\nCtrl-C stops them.")
        while not stop.wait(0.5):
            pass


register_review_commands(rejects)
register_replay_and_stats(rejects)
register_report_commands(main)
