"""The keys and value shapes of ``fields.yaml`` and ``stages.yaml``: what their loader accepts
and what their JSON Schemas say (see :mod:`crmbridge.filespec`)."""

from __future__ import annotations

from crmbridge.filespec import (
    AnyOf,
    Boolean,
    Enum,
    FileSpec,
    Integer,
    Key,
    ListOf,
    MapOf,
    Null,
    Obj,
    Ref,
    Scalar,
    Text,
)
from crmbridge.mapping.mapper import OnParseError, Unmapped
from crmbridge.mapping.policies import Incomplete, UpdatePolicy
from crmbridge.mapping.stages import Regression
from crmbridge.mapping.transforms import TRANSFORMS

__all__ = ["FIELD", "FIELDS", "FIELD_MAP", "MOVES", "STAGE", "STAGES", "STAGE_MAP"]

API_NAME = r"[A-Za-z][A-Za-z0-9_]*"
PROPERTY_NAME = r"[A-Za-z0-9_]+"


def _choices(enum: type[Unmapped | OnParseError | UpdatePolicy | Incomplete | Regression]) -> Enum:
    return Enum(tuple(member.value for member in enum))


FIELD = Obj(
    (
        Key("from", Text(PROPERTY_NAME), "the HubSpot property's internal name"),
        Key("value", Scalar(), "a constant every lead gets (instead of from:)"),
        Key(
            "transforms",
            ListOf(Enum(tuple(TRANSFORMS))),
            "applied left to right: " + ", ".join(TRANSFORMS),
        ),
        Key("required", Boolean(), "an empty value is a problem (see incomplete:)"),
        Key("default", Scalar(), "sent when the value is empty (and for unmapped: default)"),
        Key("truncate", Boolean(), "cut text to the field's length instead of rejecting it"),
        Key("value_map", MapOf(Scalar()), "HubSpot value → Salesforce value (ignoring case)"),
        Key("unmapped", _choices(Unmapped), "what to do with a value the value_map lacks"),
        Key("clear_when_empty", Boolean(), "an empty HubSpot value clears the Salesforce field"),
        Key(
            "on_parse_error",
            _choices(OnParseError),
            "an unreadable number: reject the lead, or omit the field silently",
        ),
        Key(
            "update",
            _choices(UpdatePolicy),
            "when crmbridge writes it: always, if_blank (in Salesforce), on_create, never",
        ),
        Key(
            "incomplete",
            _choices(Incomplete),
            "a qualified lead's missing or invalid value: reject the lead, or sync it with "
            "the placeholder or without the value, flagged for a reviewer",
        ),
    ),
    doc="how one Salesforce field gets its value",
    one_of=(("from", "value"),),
)

FIELD_MAP = Obj(
    (
        Key("object", Text(API_NAME), "the sObject crmbridge writes (Lead)"),
        Key("external_id", Text(API_NAME), "the External ID field holding the contact id", True),
        Key(
            "allow_international_email",
            Boolean(),
            "send e-mail addresses with non-ASCII characters before the @",
        ),
        Key("placeholder", Text(), "the text incomplete: placeholder sends ([not provided])"),
        Key(
            "lead_source",
            Text(PROPERTY_NAME),
            "the HubSpot property reports group leads by (hs_analytics_source)",
        ),
        Key(
            "exception_field",
            Text(API_NAME),
            "the text field that marks a lead a reviewer synced despite the rules (optional)",
        ),
        Key("fields", MapOf(Ref("field"), API_NAME), "Salesforce field → its source", True),
    ),
    doc="which HubSpot contact property fills which Salesforce Lead field",
)

_STAGE_VALUE = AnyOf((Text(), Integer(), Null()))
STAGE = Obj(
    (
        Key("name", Text(), "the stage's name (recorded on decisions, used by moves)", True),
        Key(
            "when",
            MapOf(AnyOf((_STAGE_VALUE, ListOf(_STAGE_VALUE))), PROPERTY_NAME),
            "HubSpot property → accepted value(s); every property must match",
            True,
        ),
        Key("status", Text(), "the Salesforce value these leads get", True),
    ),
    doc="one stage: the first whose when matches is the contact's stage",
)

MOVE = Obj(
    (
        Key("from", AnyOf((Text(), ListOf(Text()))), "a stage, a list of stages, or any", True),
        Key("to", AnyOf((Text(), ListOf(Text()))), "a stage, a list of stages, or any", True),
    ),
    doc="a move that is always fine (recycle, disqualify)",
)

MOVES = Obj(
    (
        Key("order", ListOf(Text()), "the funnel, earliest stage first: moving on is fine", True),
        Key("allowed", ListOf(Ref("move")), "other moves that are fine"),
        Key(
            "regression",
            _choices(Regression),
            "any other move: forbid (the stage stays), allow, or hold the lead for review",
        ),
    ),
    doc="which stage changes are allowed; every change is recorded on the decision",
)

STAGE_MAP = Obj(
    (
        Key("target", Text(API_NAME), "the Lead field the stage sets (Status)"),
        Key("stages", ListOf(Ref("stage")), "tried top to bottom; the first match wins", True),
        Key("default", Text(), "the value when no stage matches (the stage named default)"),
        Key("moves", MOVES, "the stage policy"),
    ),
    doc="which Salesforce Lead Status a contact gets from its HubSpot stage",
)

FIELDS = FileSpec(
    file="fields.yaml", title="crmbridge field map", root=FIELD_MAP, defs={"field": FIELD}
)
STAGES = FileSpec(
    file="stages.yaml",
    title="crmbridge stage map",
    root=STAGE_MAP,
    defs={"stage": STAGE, "move": MOVE},
)
