"""The JSON Schemas of the three files under ``mappings/``, for editors.

Generated from the same declarative description the loaders use
(:mod:`crmbridge.rules.filespec`, :mod:`crmbridge.mapping.filespec`), so the schema an editor
checks against and the keys crmbridge accepts cannot drift apart. ``crmbridge mappings schema``
writes them; the shipped files point at them with a ``# yaml-language-server: $schema=…`` line.
"""

from __future__ import annotations

import json
from pathlib import Path

from crmbridge.filespec import FileSpec
from crmbridge.mapping.filespec import FIELDS, STAGES
from crmbridge.rules.filespec import QUALIFICATION

__all__ = ["FILE_SPECS", "SCHEMA_DIR", "schema_text", "write_schemas"]

#: Every admin file, in the order the README documents them.
FILE_SPECS: tuple[FileSpec, ...] = (QUALIFICATION, FIELDS, STAGES)
#: Where the schemas live, relative to the mappings directory.
SCHEMA_DIR = "schema"


def schema_text(spec: FileSpec) -> str:
    """The schema of one file as the text written to disk (stable: diffs stay readable)."""
    return json.dumps(spec.json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every file's schema into ``directory`` (made if missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in FILE_SPECS:
        path = directory / spec.schema_file
        path.write_text(schema_text(spec), encoding="utf-8")
        written.append(path)
    return written
