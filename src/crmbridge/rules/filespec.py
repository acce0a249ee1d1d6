"""The keys and value shapes of ``qualification.yaml``: what its loader accepts and what its
JSON Schema says (see :mod:`crmbridge.filespec`)."""

from __future__ import annotations

from crmbridge.filespec import (
    AnyOf,
    Boolean,
    Enum,
    FileSpec,
    IfHas,
    Integer,
    Key,
    ListOf,
    MapOf,
    Number,
    Obj,
    Ref,
    Scalar,
    Text,
    When,
)
from crmbridge.rules.model import OPERATORS, Op, ParseAs

__all__ = ["GROUP", "LEAF", "OPERAND_KEYS", "QUALIFICATION", "RULE_SET", "TIER"]

PROPERTY_NAME = r"[A-Za-z0-9_]+"
API_NAME = r"[A-Za-z][A-Za-z0-9_]*"
OPERAND_KEYS = ("value", "values", "min", "max", "pattern")

_NUMBER_OR_TEXT = AnyOf((Number(), Text()))
MATCH = AnyOf(
    (
        Enum(("all", "any")),
        Obj((Key("at_least", Integer(minimum=1), "how many children must pass", required=True),)),
    )
)
_MATCH_DOC = "how the criteria combine: all, any, or {at_least: N}"
_REASON_DOC = "the sentence a reviewer reads when this fails; {placeholders} fill in values"
_POINTS_DOC = "what meeting this criterion adds to the lead's score (tiers may grade by score)"

LEAF = Obj(
    (
        Key("name", Text(), "shown in reject reasons and reports; unique among neighbours", True),
        Key("property", Text(PROPERTY_NAME), "the HubSpot property's internal name", True),
        Key("parse", Enum(tuple(p.value for p in ParseAs)), "how to read the text: numbers too"),
        Key("op", Enum(tuple(o.value for o in Op)), "the comparison", True),
        Key("synonyms", Text(), "a table under synonyms: the value is read through first"),
        Key("case_sensitive", Boolean(), "compare text exactly (default: ignore case)"),
        Key("reason", Text(), _REASON_DOC),
        Key("points", Integer(minimum=0), _POINTS_DOC),
        Key("value", _NUMBER_OR_TEXT, "what eq, ne, gt, gte, lt, lte, contains compare with"),
        Key("values", ListOf(_NUMBER_OR_TEXT), "the list for in, not_in, contains_any"),
        Key("min", _NUMBER_OR_TEXT, "between: the lowest value that passes"),
        Key("max", _NUMBER_OR_TEXT, "between: the highest value that passes"),
        Key("pattern", Text(), "matches: an RE2 regular expression, searched in the text"),
    ),
    doc="a criterion: one HubSpot property compared by an operator",
    when=tuple(
        When(
            "op",
            (op.value,),
            needs=spec.keys,
            refuses=tuple(k for k in OPERAND_KEYS if k not in spec.keys),
        )
        for op, spec in OPERATORS.items()
    ),
)

GROUP = Obj(
    (
        Key("name", Text(), "shown in reject reasons and reports; unique among neighbours", True),
        Key("match", MATCH, _MATCH_DOC),
        Key("criteria", ListOf(Ref("criterion")), "the criteria this group combines", True),
        Key("reason", Text(), _REASON_DOC),
        Key("points", Integer(minimum=0), _POINTS_DOC),
    ),
    doc="a group of criteria combined by match",
)

TIER = Obj(
    (
        Key("name", Text(), "the grade recorded on every decision (Hot, Warm, MQL …)", True),
        Key("requires", ListOf(Text()), "criteria (by name) a lead must meet for this tier"),
        Key("min_score", Integer(minimum=0), "the score a lead needs for this tier"),
        Key("sync", Boolean(), "whether leads of this tier go to Salesforce (default true)"),
        Key("stage", Text(), "a stage of stages.yaml these leads get (its Status)"),
        Key("set", MapOf(Scalar(), API_NAME), "Salesforce field → value, e.g. Rating: Hot"),
    ),
    doc="a grade; tiers are tried best first and the first one a lead reaches is its grade",
)

RULE_SET = Obj(
    (
        Key("version", Text(), "recorded on every decision: change it with every rule change"),
        Key("name", Text(), "the rule set's name"),
        Key("match", MATCH, _MATCH_DOC + " (without tiers)"),
        Key("criteria", ListOf(Ref("criterion")), "the qualification criteria", True),
        Key("tiers", ListOf(Ref("tier")), "grades, best first; the tier decides who syncs"),
        Key(
            "synonyms",
            MapOf(MapOf(ListOf(Text()))),
            "named tables: canonical value → the ways people type it",
        ),
    ),
    doc="the qualification rules marketing and sales agreed on",
)

QUALIFICATION = FileSpec(
    file="qualification.yaml",
    title="crmbridge qualification rules",
    root=RULE_SET,
    defs={"criterion": IfHas("criteria", Ref("group"), Ref("leaf")), "leaf": LEAF, "group": GROUP,
          "tier": TIER},
)  # fmt: skip
