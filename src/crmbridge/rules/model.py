"""The qualification rule set as data: criteria, groups, operators and their reason templates.

A rule set is a tree. A :class:`Criterion` (leaf) reads one HubSpot property, optionally reads it
through a synonym table and parses it (money, integer, number), and compares it with an operator;
a :class:`Group` combines its children with ``all``, ``any`` or ``at_least N``. Top-level
criteria may carry ``points``, and :class:`Tier` grades (Hot / Warm / Raw, MQL / SAL / SQL) by
the criteria a lead meets or by its score. Everything here is immutable, and
:func:`canonical` gives the JSON form the rule set's content hash is taken from, so reformatting
the file or editing its comments never changes the version recorded on decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from crmbridge.errors import Location
from crmbridge.model import FieldValue
from crmbridge.parsing import format_number
from crmbridge.synonyms import Synonyms

__all__ = [
    "GROUP_PLACEHOLDERS",
    "MAX_GROUP_DEPTH",
    "MAX_RULE_TEXT_CHARS",
    "OPERATORS",
    "Criterion",
    "Group",
    "Match",
    "Op",
    "OpSpec",
    "Operand",
    "OperandKind",
    "ParseAs",
    "Rule",
    "RuleSetSpec",
    "Tier",
    "canonical",
    "placeholders_for",
]

#: The longest text (after trimming) a criterion reads; a longer value fails with its own reason.
#: Ten thousand characters is pages of typing, far more than any rule needs to judge.
MAX_RULE_TEXT_CHARS = 10_000

#: How deep groups may nest (the top-level criteria are level 1); deeper is refused at load.
MAX_GROUP_DEPTH = 32

#: A comparison value from the file: text, or a number when the criterion parses numbers.
Operand = str | Decimal


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    CONTAINS_ANY = "contains_any"
    MATCHES = "matches"
    PRESENT = "present"
    ABSENT = "absent"


class ParseAs(StrEnum):
    """How a criterion reads its HubSpot property (every HubSpot value is a string)."""

    TEXT = "text"
    MONEY = "money"
    INTEGER = "integer"
    NUMBER = "number"

    @property
    def numeric(self) -> bool:
        return self is not ParseAs.TEXT


class OperandKind(StrEnum):
    """Which keys an operator takes besides the common ones."""

    VALUE = "value"
    VALUES = "values"
    RANGE = "range"
    PATTERN = "pattern"
    NONE = "none"


@dataclass(frozen=True)
class OpSpec:
    """What an operator takes and how it words a failure (``text`` template when comparing text)."""

    operand: OperandKind
    number_reason: str
    text_reason: str
    numbers_only: bool = False
    text_only: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The file keys holding this operator's operand(s)."""
        return {
            OperandKind.VALUE: ("value",),
            OperandKind.VALUES: ("values",),
            OperandKind.RANGE: ("min", "max"),
            OperandKind.PATTERN: ("pattern",),
            OperandKind.NONE: (),
        }[self.operand]


def _numeric(symbol: str) -> OpSpec:
    reason = f"{{name}}: {{value}} is not {symbol} {{threshold}}"
    return OpSpec(OperandKind.VALUE, reason, reason, numbers_only=True)


#: Every operator, with its operand and default reason templates.
OPERATORS: Mapping[Op, OpSpec] = {
    Op.EQ: OpSpec(
        OperandKind.VALUE,
        "{name}: {value} is not {threshold}",
        '{name}: "{value}" is not "{threshold}"',
    ),
    Op.NE: OpSpec(
        OperandKind.VALUE,
        "{name}: {value} must not be {threshold}",
        '{name}: "{value}" must not be "{threshold}"',
    ),
    Op.GT: _numeric(">"),
    Op.GTE: _numeric(">="),
    Op.LT: _numeric("<"),
    Op.LTE: _numeric("<="),
    Op.BETWEEN: OpSpec(
        OperandKind.RANGE,
        "{name}: {value} is not between {min} and {max}",
        "{name}: {value} is not between {min} and {max}",
        numbers_only=True,
    ),
    Op.IN: OpSpec(
        OperandKind.VALUES,
        "{name}: {value} is not one of {values}",
        '{name}: "{value}" is not one of {values}',
    ),
    Op.NOT_IN: OpSpec(
        OperandKind.VALUES,
        "{name}: {value} is one of the excluded values {values}",
        '{name}: "{value}" is one of the excluded values {values}',
    ),
    Op.CONTAINS: OpSpec(
        OperandKind.VALUE,
        "",
        '{name}: "{value}" does not contain "{threshold}"',
        text_only=True,
    ),
    Op.CONTAINS_ANY: OpSpec(
        OperandKind.VALUES, "", '{name}: "{value}" mentions none of {values}', text_only=True
    ),
    Op.MATCHES: OpSpec(
        OperandKind.PATTERN, "", '{name}: "{value}" does not match {pattern}', text_only=True
    ),
    Op.PRESENT: OpSpec(
        OperandKind.NONE,
        '{name}: no value (HubSpot property "{property}" is empty)',
        '{name}: no value (HubSpot property "{property}" is empty)',
    ),
    Op.ABSENT: OpSpec(
        OperandKind.NONE,
        "{name}: must be empty, but is {value}",
        '{name}: must be empty, but is "{value}"',
    ),
}

_COMMON_PLACEHOLDERS = frozenset({"name", "property", "value", "raw"})
_OPERAND_PLACEHOLDERS = {
    OperandKind.VALUE: frozenset({"threshold"}),
    OperandKind.VALUES: frozenset({"values"}),
    OperandKind.RANGE: frozenset({"min", "max"}),
    OperandKind.PATTERN: frozenset({"pattern"}),
    OperandKind.NONE: frozenset[str](),
}
#: Placeholders a group's ``reason`` may use.
GROUP_PLACEHOLDERS = frozenset(
    {"name", "failed", "failed_count", "passed_count", "needed", "total"}
)


def placeholders_for(op: Op) -> frozenset[str]:
    """The placeholders a criterion with operator ``op`` may use in its ``reason``."""
    return _COMMON_PLACEHOLDERS | _OPERAND_PLACEHOLDERS[OPERATORS[op].operand]


@dataclass(frozen=True)
class Match:
    """How a group (or the rule set) combines its children: all, any, or at least ``count``."""

    kind: str  # "all" | "any" | "at_least"
    count: int = 0

    def needed(self, total: int) -> int:
        """How many of ``total`` children must pass."""
        return {"all": total, "any": 1}.get(self.kind, self.count)

    def canonical(self) -> Any:
        return {"at_least": self.count} if self.kind == "at_least" else self.kind


ALL = Match("all")


@dataclass(frozen=True)
class Criterion:
    """A leaf: ``property`` (parsed as ``parse``) compared by ``op`` with its operand(s)."""

    name: str
    property: str
    op: Op
    parse: ParseAs = ParseAs.TEXT
    value: Operand | None = None  # eq ne gt gte lt lte contains
    values: tuple[Operand, ...] = ()  # in not_in contains_any
    min: Decimal | None = None  # between (inclusive)
    max: Decimal | None = None
    pattern: str | None = None  # matches (an RE2 search)
    case_sensitive: bool = False
    reason: str | None = None  # template; None = the operator's default
    points: int = 0  # what meeting it adds to the lead's score (top-level criteria)
    synonyms: str | None = None  # the synonym table the value is read through first

    def canonical(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "property": self.property,
            "op": self.op.value,
            "parse": self.parse.value,
            "case_sensitive": self.case_sensitive,
            "reason": self.reason,
        }
        for key in OPERATORS[self.op].keys:
            if key == "values":
                data[key] = [_canonical_operand(v) for v in self.values]
            else:
                data[key] = _canonical_operand(getattr(self, key))
        # Only when set, so rule sets without them keep the hash (and version) they had.
        if self.points:
            data["points"] = self.points
        if self.synonyms:
            data["synonyms"] = self.synonyms
        return data


@dataclass(frozen=True)
class Group:
    """Named children combined by ``match``; ``reason`` (optional) words its failure."""

    name: str
    criteria: tuple[Rule, ...]
    match: Match = ALL
    reason: str | None = None
    points: int = 0

    def canonical(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "match": self.match.canonical(),
            "criteria": [c.canonical() for c in self.criteria],
            "reason": self.reason,
        }
        if self.points:
            data["points"] = self.points
        return data


Rule = Criterion | Group


@dataclass(frozen=True)
class Tier:
    """One grade, best first in the file: reached when every ``requires`` criterion passes and
    the score is at least ``min_score`` (a tier with neither takes every lead left). ``sync``
    says whether leads of this tier go to Salesforce; ``stage`` (a stage of ``stages.yaml``)
    and ``set`` (Salesforce field → value, e.g. ``Rating: Hot``) are what they get there."""

    name: str
    requires: tuple[str, ...] = ()
    min_score: int | None = None
    sync: bool = True
    stage: str | None = None
    set: Mapping[str, FieldValue] = field(default_factory=dict)
    #: Where the tier is written (for problems found with the other files or the describe).
    location: Location | None = field(default=None, compare=False)

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requires": list(self.requires),
            "min_score": self.min_score,
            "sync": self.sync,
            "stage": self.stage,
            "set": dict(sorted(self.set.items())),
        }


@dataclass(frozen=True)
class RuleSetSpec:
    """A whole qualification file: its top-level criteria, how they combine, its label, its
    tiers (when it grades leads) and the synonym tables criteria read values through."""

    name: str
    criteria: tuple[Rule, ...]
    match: Match = ALL
    version: str | None = None
    tiers: tuple[Tier, ...] = ()
    synonyms: Mapping[str, Synonyms] = field(default_factory=dict)


def _canonical_operand(value: Operand | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    # normalize(): 50000, 50000.0 and "50k" are one threshold, so one hash.
    return format_number(value.normalize())


def canonical(spec: RuleSetSpec) -> dict[str, Any]:
    """The rule content as JSON-ready data: what the content hash covers (not ``version``)."""
    data: dict[str, Any] = {
        "name": spec.name,
        "match": spec.match.canonical(),
        "criteria": [c.canonical() for c in spec.criteria],
    }
    if spec.tiers:
        data["tiers"] = [t.canonical() for t in spec.tiers]
    if spec.synonyms:
        data["synonyms"] = {n: t.canonical_json() for n, t in sorted(spec.synonyms.items())}
    return data
