"""The command group turns a ConfigError raised anywhere in a command into exit 2 with hints."""

from __future__ import annotations

import click
from click.testing import CliRunner

from crmbridge.cli import CommandGroup
from crmbridge.errors import ConfigError, ConfigProblem, Location


@click.group(cls=CommandGroup)
def group() -> None:
    """A stand-in for `crmbridge` with the same group class."""


@group.group()
def nested() -> None:
    """A nested group, like `crmbridge rejects`."""


@nested.command()
def deep() -> None:
    """Fails deep inside, the way a store or a remote answer can."""
    raise ConfigError(
        ConfigProblem(
            Location("mappings/fields.yaml", 25), 'no object "Le\x1b[2Jed"', hint="e.g. Lead"
        )
    )


def test_config_error_anywhere_exits_2_with_location_and_hint() -> None:
    """A ConfigError raised by a nested command prints file:line and the hint, exit 2."""
    result = CliRunner().invoke(group, ["nested", "deep"])
    assert result.exit_code == 2
    assert "mappings/fields.yaml:25: no object" in result.output
    assert "hint: e.g. Lead" in result.output
    assert "Traceback" not in result.output


def test_config_error_text_is_shown_escaped() -> None:
    """A message quoting outside text shows its control characters escaped."""
    result = CliRunner().invoke(group, ["nested", "deep"])
    assert 'no object "Le\\x1b[2Jed"' in result.output
    assert "\x1b" not in result.output
