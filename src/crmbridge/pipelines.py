"""The pipelines a deployment runs: one from the environment alone, or several from a file."""

from __future__ import annotations

from dataclasses import dataclass

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.settings import Settings
from crmbridge.state import DEFAULT_PIPELINE


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline: its name (the key of its state in the store) and its whole settings."""

    name: str
    settings: Settings


def pipelines_from(settings: Settings) -> list[PipelineSpec]:
    """The pipelines ``settings`` configure."""
    return [PipelineSpec(DEFAULT_PIPELINE, settings)]


def select_pipeline(specs: list[PipelineSpec], name: str | None) -> list[PipelineSpec]:
    """``specs``, or only the one called ``name``; a ConfigError naming the configured ones
    when there is none by that name."""
    if name is None:
        return specs
    chosen = [spec for spec in specs if spec.name == name]
    if not chosen:
        raise ConfigError(
            ConfigProblem(
                Location("--pipeline"),
                f"no pipeline is called {name!r}",
                hint="configured: " + ", ".join(spec.name for spec in specs),
            )
        )
    return chosen
