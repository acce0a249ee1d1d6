"""What every command of the CLI shares: reading the settings, choosing the pipeline and
opening its state store, and saying one line on stderr. ``cli.py`` and the command modules
beside it (``review_cli.py``, ``report_cli.py``) import it; it imports none of them."""

from __future__ import annotations

from typing import Any

import click

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.logs import configure_logging
from crmbridge.pipelines import PipelineSpec, pipelines_from, select_pipeline
from crmbridge.ports import StateStore
from crmbridge.redaction import redact, register_secret
from crmbridge.settings import Settings, load_settings
from crmbridge.state import DEFAULT_PIPELINE, open_store
from crmbridge.text import visible


def say(line: str) -> None:
    """One line on stderr: escaped (it may quote a file or a remote answer), secrets masked."""
    click.echo(visible(redact(line)), err=True)


def cli_settings(**overrides: Any) -> Settings:
    """The settings, their secrets registered for masking in every output."""
    settings = load_settings(**overrides)
    for secret in settings.secret_values():
        register_secret(secret)
    return settings


def configured_pipelines(settings: Settings, name: str | None) -> list[PipelineSpec]:
    """The configured pipelines (only ``name`` when given), their secrets registered for
    masking; a name that is not configured is a ConfigError listing those that are."""
    specs = pipelines_from(settings)
    for spec in specs:
        for secret in spec.settings.secret_values():
            register_secret(secret)
    return select_pipeline(specs, name)


PIPELINE_META = "crmbridge.pipeline"


def _remember_pipeline(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    del param
    ctx.meta[PIPELINE_META] = value


pipeline_option = click.option(
    "--pipeline",
    default=None,
    expose_value=False,
    callback=_remember_pipeline,
    help="The pipeline to read (needed when CRMBRIDGE_PIPELINES_FILE defines several).",
)


def state_option(command: Any) -> Any:
    """``--state-url`` and ``--pipeline``: which store, and whose state in it."""
    command = click.option(
        "--state-url", default=None, help="State store URL (default: CRMBRIDGE_STATE_URL)."
    )(command)
    return pipeline_option(command)


def chosen_pipeline(settings: Settings) -> str:
    """The pipeline ``--pipeline`` names; without it the only configured one (``default``
    without a pipelines file). Several configured and none named is a ConfigError."""
    name: str | None = click.get_current_context().meta.get(PIPELINE_META)
    if name is not None:
        return name
    if settings.pipelines_file is None:
        return DEFAULT_PIPELINE
    specs = configured_pipelines(settings, None)
    if len(specs) > 1:
        raise ConfigError(
            ConfigProblem(
                Location("--pipeline"),
                f"{settings.pipelines_file} defines {len(specs)} pipelines: name one",
                hint="e.g. --pipeline " + specs[0].name,
            )
        )
    return specs[0].name


def store_settings(state_url: str | None) -> Settings:
    """Settings with ``--state-url`` applied; warnings (a moved store) go to stderr, while
    the command's own output stays alone on stdout."""
    settings = cli_settings(**({"state_url": state_url} if state_url else {}))
    configure_logging(settings.log_format, "WARNING")
    return settings


def open_reading_store(state_url: str | None) -> StateStore:
    """The existing state store of the chosen pipeline, for the read-only commands."""
    settings = store_settings(state_url)
    return open_store(settings.state_url, read_only=True, pipeline=chosen_pipeline(settings))


def open_chosen_store(state_url: str | None, *, read_only: bool) -> StateStore:
    """The existing state store of the chosen pipeline (``--pipeline``), to read or to write
    (reviewers' changes)."""
    settings = store_settings(state_url)
    return open_store(settings.state_url, read_only=read_only, pipeline=chosen_pipeline(settings))


def open_deployment_store(state_url: str | None, *, read_only: bool) -> StateStore:
    """The state store, for what belongs to the whole deployment rather than one pipeline
    (the console's users): opened as the chosen pipeline's, else the first configured one's."""
    settings = store_settings(state_url)
    name = click.get_current_context().meta.get(PIPELINE_META)
    if name is None:
        name = configured_pipelines(settings, None)[0].name if settings.pipelines_file else None
    return open_store(settings.state_url, read_only=read_only, pipeline=name or DEFAULT_PIPELINE)
