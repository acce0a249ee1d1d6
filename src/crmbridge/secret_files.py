"""Secrets from files: ``CRMBRIDGE_…_FILE`` names a file holding a secret setting's value.

Containers and orchestrators hand secrets over as files (``/run/secrets/…`` in Docker and
Compose, mounted Secrets in Kubernetes, ``LoadCredential=`` in systemd), not as environment
variables that ``docker inspect`` or ``/proc/*/environ`` would show. For each setting in
``FILE_SETTINGS``, ``<NAME>_FILE=/path`` reads the value from that file (surrounding whitespace,
such as the trailing newline, removed; the usual checks then apply). Setting both the variable
and its ``_FILE`` twin is refused, as is a file that cannot be read: a ConfigError naming the
variable, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crmbridge.errors import ConfigError, ConfigProblem, Location

#: The settings a file may hold, by variable name (the ones holding secrets).
FILE_SETTINGS = (
    "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN",
    "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN",
    "CRMBRIDGE_STATE_URL",  # a PostgreSQL URL carries its password
)
PREFIX = "CRMBRIDGE_"
SUFFIX = "_FILE"
#: A secret is a line; anything longer is not the file meant.
MAX_SECRET_BYTES = 64 * 1024


def secret_file_values(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings read from ``…_FILE`` files, nested as ``Settings`` takes them
    (``{"hubspot": {"access_token": "…"}}``). Raises ConfigError for every problem."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems = []
    for name in FILE_SETTINGS:
        file_variable = name + SUFFIX
        path = env.get(file_variable)
        if path is None:
            continue
        where = Location(f"environment variable {file_variable}")
        if name in env:
            problems.append(
                ConfigProblem(where, f"{name} is set too", hint="set one of the two, not both")
            )
            continue
        try:
            with Path(path).open("rb") as handle:
                raw = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            problems.append(
                ConfigProblem(
                    where,
                    f"cannot read {path}: {exc.strerror}",
                    hint="mount the secret there and let the user crmbridge runs as read it",
                )
            )
            continue
        if len(raw) > MAX_SECRET_BYTES:
            problems.append(
                ConfigProblem(where, f"{path} is larger than {MAX_SECRET_BYTES} bytes", hint=None)
            )
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(ConfigProblem(where, f"{path} is not UTF-8 text", hint=None))
            continue
        parts = name[len(PREFIX) :].lower().split("__")
        target = values
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = text.strip()
    if problems:
        raise ConfigError(problems)
    return values
