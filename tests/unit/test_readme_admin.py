"""The README's admin section documents every transform, operator, parse mode, policy choice
and key the loaders accept: adding one without documenting it fails here."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pytest

from crmbridge.mapping import TRANSFORMS, OnParseError, Unmapped
from crmbridge.mapping.policies import Incomplete, UpdatePolicy
from crmbridge.mapping.stages import Regression
from crmbridge.model import MoveVerdict
from crmbridge.rules import Op, ParseAs
from crmbridge.schemas import FILE_SPECS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
ADMIN = README[README.index("## The files admins edit") : README.index("## What-if")]


def words(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


CHOICES = {
    "transform": list(TRANSFORMS),
    "operator": words(Op),
    "parse": words(ParseAs),
    "update": words(UpdatePolicy),
    "incomplete": words(Incomplete),
    "regression": words(Regression),
    "unmapped": words(Unmapped),
    "on_parse_error": words(OnParseError),
}


@pytest.mark.parametrize("kind", list(CHOICES))
def test_every_choice_is_documented(kind: str) -> None:
    """Each transform, operator and policy choice appears in the admin section as `code`."""
    missing = [word for word in CHOICES[kind] if f"`{word}`" not in ADMIN]
    assert missing == []


def test_every_stage_verdict_is_documented() -> None:
    """The verdicts a decision records for a stage move are all explained."""
    missing = [v.value for v in MoveVerdict if f"`{v.value}`" not in ADMIN]
    assert missing == []


@pytest.mark.parametrize("spec", FILE_SPECS, ids=lambda s: s.file)
def test_every_key_of_every_file_is_documented(spec: object) -> None:
    """Every key the loaders accept (the schema's keys) appears in the admin section."""
    from crmbridge.filespec import FileSpec  # noqa: PLC0415 - only for the type below

    assert isinstance(spec, FileSpec)
    keys = {key.name for obj in spec.objects() for key in obj.keys}
    assert sorted(k for k in keys if f"`{k}`" not in ADMIN) == []
