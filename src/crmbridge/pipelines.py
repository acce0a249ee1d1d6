"""The pipelines a deployment runs: one from the environment alone, or several from a file.

Without ``CRMBRIDGE_PIPELINES_FILE`` there is one pipeline, ``default``, configured by the
environment as always. With it, the file lists the pipelines, each with its own name, mappings
directory, HubSpot and Salesforce endpoints and credentials, retry budget and poll interval::

    pipelines:
      - name: emea
        mappings_dir: mappings/emea          # relative to this file
        poll_interval_s: 120
        hubspot:
          access_token_file: /run/secrets/hubspot-emea
        salesforce:
          instance_url: https://acme-emea.my.salesforce.com
          access_token_env: SALESFORCE_EMEA_TOKEN
          reserve_fraction: 0.3
        retry: {max_total_s: 600}

Rules, each checked at start with ``file:line`` and a hint (exit 2):

- Names are lower-case letters, digits, ``-`` and ``_``, unique; a name is the key of the
  pipeline's cursor, ledger and reject log in the one state store (``CRMBRIDGE_STATE_URL``).
- The ``hubspot`` and ``salesforce`` sections take the keys of the environment's
  ``CRMBRIDGE_HUBSPOT__…`` and ``CRMBRIDGE_SALESFORCE__…`` settings (lower case), with the
  same checks, and come from the file alone: a pipeline never borrows another's credentials.
- A secret is never written in the file: ``access_token_file`` names a file holding it,
  ``access_token_env`` an environment variable.
- ``retry``, ``poll_interval_s`` and ``mappings_dir`` default to the environment's settings.
  State URL, lease timeout, logging and stop grace are the process's, from the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, ValidationError

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.settings import (
    HubSpotSettings,
    RetrySettings,
    SalesforceSettings,
    Settings,
)
from crmbridge.state import DEFAULT_PIPELINE
from crmbridge.yamlfile import Node, Problems, check_keys, get_text, load_yaml

PIPELINES_SETTING = "CRMBRIDGE_PIPELINES_FILE"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_PIPELINE_KEYS = ("name", "mappings_dir", "poll_interval_s", "hubspot", "salesforce", "retry")
_SECRET_KEYS = ("access_token_file", "access_token_env")
_POLL_INTERVAL = TypeAdapter(Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)])
#: Settings whose values are paths, read relative to the pipelines file.
_PATH_KEYS = frozenset({"ca_bundle", "private_key_file"})
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline: its name (the key of its state in the store) and its whole settings."""

    name: str
    settings: Settings


def pipelines_from(settings: Settings) -> list[PipelineSpec]:
    """The pipelines ``settings`` configure: those of ``CRMBRIDGE_PIPELINES_FILE``, or the
    one ``default`` pipeline of the environment. Raises ConfigError with every problem."""
    if settings.pipelines_file is None:
        return [PipelineSpec(DEFAULT_PIPELINE, settings)]
    return load_pipelines(settings.pipelines_file, settings)


def load_pipelines(path: Path, base: Settings) -> list[PipelineSpec]:
    """Read the pipelines file at ``path``; every value not in it comes from ``base``."""
    if not path.is_file():
        raise ConfigError(
            ConfigProblem(
                Location(f"environment variable {PIPELINES_SETTING}"),
                f"{path}: no such file",
                hint="point it at the pipelines file (see README, Running several pipelines), "
                "or unset it to run one pipeline configured by the environment",
            )
        )
    root = load_yaml(path)
    problems = Problems()
    if not check_keys(root, problems, ("pipelines",), required=("pipelines",), what="the file"):
        problems.raise_if_any()
    listed = root.get("pipelines")
    if listed is None or not listed.is_list or not listed.value:
        problems.add(
            listed or root,
            "pipelines must be a list with at least one pipeline",
            "write `pipelines:` followed by `- name: …` entries",
        )
        problems.raise_if_any()
    assert listed is not None
    specs: list[PipelineSpec] = []
    seen: dict[str, Node] = {}
    for item in listed.elements():
        spec = _pipeline(item, path.parent, base, problems)
        if spec is None:
            continue
        if spec.name in seen:
            problems.add(
                item.get("name") or item,
                f'pipeline "{spec.name}" is defined twice (first at line {seen[spec.name].line})',
                "give every pipeline its own name: it keys its state in the store",
            )
            continue
        seen[spec.name] = item
        specs.append(spec)
    problems.raise_if_any()
    return specs


def _pipeline(node: Node, here: Path, base: Settings, problems: Problems) -> PipelineSpec | None:
    before = len(problems)
    if not check_keys(node, problems, _PIPELINE_KEYS, required=("name",), what="a pipeline"):
        return None
    name = get_text(node, "name", problems, required=True, what="a pipeline")
    if name is not None and not _NAME.fullmatch(name):
        problems.add(
            node.get("name") or node,
            f'pipeline name "{name}" is not allowed',
            "use lower-case letters, digits, - and _ (at most 63), e.g. emea or bu-retail",
        )
    what = f'pipeline "{name}"'
    mappings_dir = base.mappings_dir
    mappings = get_text(node, "mappings_dir", problems, what=what)
    if mappings is not None:
        mappings_dir = here / mappings
    poll_interval_s = base.poll_interval_s
    poll = node.get("poll_interval_s")
    if poll is not None:
        try:
            poll_interval_s = _POLL_INTERVAL.validate_python(poll.plain())
        except ValidationError:
            problems.add(poll, f"{what}: poll_interval_s must be a number of seconds", "e.g. 300")
    hubspot = _section(node, "hubspot", HubSpotSettings, here, problems, what=what)
    salesforce = _section(node, "salesforce", SalesforceSettings, here, problems, what=what)
    retry = _section(
        node, "retry", RetrySettings, here, problems, what=what, start=base.retry.model_dump()
    )
    if hubspot is not None and not hubspot.access_token and not _names_secret(node, "hubspot"):
        problems.add(
            node.get("hubspot") or node,
            f"{what}: no HubSpot access token",
            "add access_token_file: PATH or access_token_env: VARIABLE under hubspot",
        )
    if (
        salesforce is not None
        and not salesforce.uses_jwt
        and not (salesforce.instance_url and salesforce.access_token)
        and not _names_secret(node, "salesforce")
    ):
        problems.add(
            node.get("salesforce") or node,
            f"{what}: Salesforce needs instance_url and an access token, or the JWT "
            "login (consumer_key, username, private_key_file)",
            "add instance_url and access_token_file or access_token_env under salesforce",
        )
    if len(problems) > before or None in (name, hubspot, salesforce, retry):
        return None
    assert name is not None
    settings = base.model_copy(
        update={
            "hubspot": hubspot,
            "salesforce": salesforce,
            "retry": retry,
            "mappings_dir": mappings_dir,
            "poll_interval_s": poll_interval_s,
        }
    )
    return PipelineSpec(name, settings)


def _section(
    node: Node,
    key: str,
    model: type[_Model],
    here: Path,
    problems: Problems,
    *,
    what: str,
    start: dict[str, Any] | None = None,
) -> _Model | None:
    """The ``key`` section of a pipeline validated as ``model``; ``None`` (and problems)
    when wrong. A secret comes from ``access_token_file`` or ``access_token_env``."""
    section = node.get(key)
    if section is None:
        if start is not None:
            return model.model_validate(start)
        problems.add(node, f'{what} has no "{key}" section', f"add `{key}:` with its endpoint")
        return None
    fields = set(model.model_fields)
    secret = "access_token" in fields
    allowed = fields | (set(_SECRET_KEYS) if secret else set())
    if not check_keys(section, problems, sorted(allowed), what=f"{key} of {what}"):
        return None
    inline = section.get("access_token")
    if inline is not None:
        problems.add(
            inline,
            f"{key} of {what}: an access token is never written in this file",
            "put it in a file (access_token_file: PATH) or an environment variable "
            "(access_token_env: NAME)",
        )
        return None
    values: dict[str, Any] = dict(start or {})
    for name, child in section.items():
        if name in _SECRET_KEYS:
            continue
        value = child.plain()
        if name in _PATH_KEYS and isinstance(value, str):
            value = str(here / value)
        values[name] = value
    if secret:
        token = _secret(section, key, here, problems, what=what)
        if token is not None:
            values["access_token"] = SecretStr(token)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            where = section.get(field) or section
            context = error.get("ctx") or {}
            hint = str(context.get("hint") or "see README, Configuration, for what it takes")
            shown = field if field != "access_token" else "the access token"
            problems.add(where, f"{key}.{shown} of {what}: {error['msg']}", hint)
        return None


def _names_secret(node: Node, key: str) -> bool:
    """Whether the ``key`` section names its secret (a problem with it is reported apart)."""
    section = node.get(key)
    return section is not None and any(section.get(name) is not None for name in _SECRET_KEYS)


def _secret(section: Node, key: str, here: Path, problems: Problems, *, what: str) -> str | None:
    """The secret a section names by file or by environment variable (never its value)."""
    from_file = get_text(section, "access_token_file", problems, what=f"{key} of {what}")
    from_env = get_text(section, "access_token_env", problems, what=f"{key} of {what}")
    if from_file is not None and from_env is not None:
        problems.add(
            section,
            f"{key} of {what} names its access token twice",
            "keep access_token_file or access_token_env, not both",
        )
        return None
    if from_file is not None:
        where = section.get("access_token_file") or section
        try:
            return (here / Path(from_file).expanduser()).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problems.add(
                where,
                f"{key} of {what}: cannot read the access token file {from_file}: {reason}",
                "check the path and that the user crmbridge runs as may read it",
            )
            return None
    if from_env is not None:
        value = os.environ.get(from_env)
        if not value:
            problems.add(
                section.get("access_token_env") or section,
                f"{key} of {what}: the environment variable {from_env} is not set",
                "export it before starting crmbridge (or use access_token_file)",
            )
            return None
        return value
    return None


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


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the pipelines file (``crmbridge config schema``), built from the
    same settings models the loader validates with, so the two cannot drift apart."""

    def section(model: type[BaseModel], *, secret: bool) -> dict[str, Any]:
        fields = model.model_json_schema()["properties"]
        properties = {name: _plain(spec) for name, spec in fields.items() if name != "access_token"}
        if secret:
            for key, what in (
                ("access_token_file", "a file holding"),
                ("access_token_env", "an environment variable holding"),
            ):
                properties[key] = {
                    "type": "string",
                    "minLength": 1,
                    "description": f"{what} the access token (never the token itself)",
                }
        return {"type": "object", "properties": properties, "additionalProperties": False}

    pipeline = {
        "type": "object",
        "required": ["name", "hubspot", "salesforce"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": f"^{_NAME.pattern}$"},
            "mappings_dir": {"type": "string", "minLength": 1},
            "poll_interval_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 86_400},
            "hubspot": section(HubSpotSettings, secret=True),
            "salesforce": section(SalesforceSettings, secret=True),
            "retry": section(RetrySettings, secret=False),
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "crmbridge pipelines file (CRMBRIDGE_PIPELINES_FILE)",
        "type": "object",
        "required": ["pipelines"],
        "additionalProperties": False,
        "properties": {"pipelines": {"type": "array", "minItems": 1, "items": pipeline}},
    }


def _plain(spec: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without pydantic's title (the key says it)."""
    return {key: value for key, value in spec.items() if key != "title"}
