"""A commented starter map from the two systems' metadata (``crmbridge mappings init``).

From HubSpot's contact property definitions and Salesforce's Lead describe it writes
``fields.yaml`` (each writable Lead field paired with the HubSpot property of the same meaning:
the standard pairs, then matching names or labels; transforms by type; value maps between
enumeration options and picklist values by label), ``stages.yaml`` (lifecycle stages onto the
Status picklist, with a moves policy) and a minimal ``qualification.yaml`` to replace with the
team's definition. Every guess is written with a comment saying what it was built from, the
fields it could not pair are listed as comments, and the result passes ``crmbridge validate``
and the check against the describe. Pure: metadata in, text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from crmbridge.mapping.policies import DEFAULT_PLACEHOLDER
from crmbridge.model import NUMERIC_TYPES, TEXT_TYPES, FieldSpec, ObjectSchema, PropertyInfo

__all__ = ["StarterMap", "starter_map"]

#: Standard Lead fields and the standard HubSpot property that means the same.
STANDARD_PAIRS = {
    "FirstName": "firstname",
    "LastName": "lastname",
    "Company": "company",
    "Email": "email",
    "Title": "jobtitle",
    "Phone": "phone",
    "MobilePhone": "mobilephone",
    "Website": "website",
    "Street": "address",
    "City": "city",
    "State": "state",
    "PostalCode": "zip",
    "Country": "country",
    "Industry": "industry",
    "AnnualRevenue": "annualrevenue",
    "NumberOfEmployees": "numemployees",
    "Description": "message",
}
#: HubSpot lifecycle stages the starter stage map names, earliest first.
FUNNEL = (("marketingqualifiedlead", "MQL"), ("salesqualifiedlead", "SQL"))
STAGE_TARGET = "Status"
_SYSTEM_FIELDS = frozenset({"Id", "OwnerId", "IsConverted", "IsDeleted", "RecordTypeId"})
_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class StarterMap:
    """The three files' text, and what was paired and left over (for the command's summary)."""

    fields: str
    stages: str | None
    qualification: str
    paired: int
    unpaired_fields: tuple[str, ...]


def _key(text: str) -> str:
    return _WORD.sub("", text.lower().removesuffix("__c"))


def _q(value: object) -> str:
    """A YAML scalar that reads back as ``value`` in any context (JSON is YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _pair(spec: FieldSpec, by_name: dict[str, PropertyInfo]) -> PropertyInfo | None:
    standard = STANDARD_PAIRS.get(spec.name)
    if standard is not None:
        return by_name.get(standard)
    wanted = _key(spec.name)
    for prop in by_name.values():
        if _key(prop.name) == wanted or _key(prop.label) == wanted:
            return prop
    return None


def _entry(spec: FieldSpec, prop: PropertyInfo) -> str | None:
    """One field's line (the text after ``Field: ``), or ``None`` when it cannot be guessed."""
    parts = [f"from: {prop.name}"]
    if spec.type == "email":
        parts += ["transforms: [trim, lower, email]", "incomplete: omit"]
    elif spec.type in TEXT_TYPES or spec.type == "phone":
        parts += ["transforms: [trim]", "truncate: true"]
    elif spec.type in NUMERIC_TYPES:
        if spec.type == "int":
            parts.append("transforms: [integer]")
        else:
            parts.append(
                "transforms: [money]" if spec.type == "currency" else "transforms: [number]"
            )
    elif spec.type == "boolean":
        parts.append("transforms: [boolean]")
    elif spec.type in ("picklist", "multipicklist"):
        value_map = _value_map(spec, prop)
        if value_map is None:
            return None
        parts += [f"value_map: {value_map}", "unmapped: drop"]
    else:
        return None  # dates, references: map them by hand
    if spec.required_on_create:
        parts.append("required: true")
        if spec.type in TEXT_TYPES:
            parts.append("incomplete: placeholder")
    return "{" + ", ".join(parts) + "}"


def _value_map(spec: FieldSpec, prop: PropertyInfo) -> str | None:
    """HubSpot options → active picklist values whose value or label reads the same."""
    picks = {}
    for value in spec.picklist_values:
        if value.active:
            picks[_key(value.value)] = value.value
            picks.setdefault(_key(value.label), value.value)
    pairs = {
        option: picks[_key(label)] if _key(label) in picks else picks.get(_key(option))
        for option, label in prop.options
    }
    found = {option: target for option, target in pairs.items() if target is not None}
    if not found:
        return None
    return "{" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in found.items()) + "}"


def _fields_text(
    schema: ObjectSchema, props: Sequence[PropertyInfo], external_id: str, when: str
) -> tuple[str, int, tuple[str, ...]]:
    by_name = {p.name: p for p in props if not p.read_only}
    lines = [
        "# yaml-language-server: $schema=schema/fields.schema.json",
        f"# Starter field map, written by `crmbridge mappings init` on {when} from HubSpot's",
        f"# {len(props)} contact properties and Salesforce's {schema.name} describe.",
        "# Each field below was paired by meaning (standard fields) or by a matching name or",
        "# label: check every line, then run `crmbridge validate`. The keys and their",
        "# choices are explained in the README's admin section.",
        f"object: {schema.name}",
        f"external_id: {external_id}",
        f"placeholder: {_q(DEFAULT_PLACEHOLDER)}",
        "lead_source: hs_analytics_source",
        "",
        "fields:",
    ]
    paired = 0
    unpaired: list[str] = []
    for spec in sorted(schema.fields.values(), key=lambda f: (not f.required_on_create, f.name)):
        if (
            spec.name in _SYSTEM_FIELDS
            or spec.name in (external_id, STAGE_TARGET)
            or not (spec.createable and spec.updateable)
        ):
            continue
        prop = _pair(spec, by_name)
        entry = _entry(spec, prop) if prop is not None else None
        if prop is None or entry is None:
            unpaired.append(spec.name)
            continue
        lines.append(
            f"  # {_comment(spec.name)} ({spec.type}) ← HubSpot {_q(_comment(prop.label))} "
            f"({prop.type})"
        )
        lines.append(f"  {spec.name}: {entry}")
        paired += 1
    if unpaired:
        lines += [
            "",
            "  # Not paired (no HubSpot property of that name or type): map by hand if needed",
        ]
        lines += [f"  #   {name}: {{from: <HubSpot property>}}" for name in unpaired]
    return "\n".join(lines) + "\n", paired, tuple(unpaired)


def _stages_text(schema: ObjectSchema, props: Sequence[PropertyInfo]) -> str | None:
    status = schema.field(STAGE_TARGET)
    lifecycle = next((p for p in props if p.name == "lifecyclestage"), None)
    if status is None or lifecycle is None or not status.active_values:
        return None
    active = status.active_values
    default = next((p.value for p in status.picklist_values if p.default and p.active), active[0])
    later = active[1] if len(active) > 1 else default
    options = {value for value, _ in lifecycle.options}
    lines = [
        "# yaml-language-server: $schema=schema/stages.schema.json",
        "# Starter stage map, from HubSpot's lifecycle stages and the Status picklist. The",
        "# statuses are guesses (the picklist's default first): set the ones your team uses.",
        f"target: {STAGE_TARGET}",
        "",
        "stages:",
    ]
    names: list[str] = []
    for stage_id, name in reversed(FUNNEL):
        if stage_id not in options:
            continue
        value = later if name == "SQL" else default
        lines += [
            f"  - name: {name}",
            f"    when: {{lifecyclestage: {stage_id}}}",
            f"    status: {_q(value)}",
        ]
        names.insert(0, name)
    if not names:
        return None
    lines += [
        "",
        f"default: {_q(default)}",
        "",
        "# A lead never moves backwards silently: a move back along the funnel keeps its stage.",
        "moves:",
        f"  order: [default, {', '.join(names)}]",
        "  regression: forbid",
    ]
    return "\n".join(lines) + "\n"


def _qualification_text(props: Sequence[PropertyInfo], when: str) -> str:
    names = {p.name for p in props}
    lines = [
        "# yaml-language-server: $schema=schema/qualification.schema.json",
        f"# Starter qualification rules, written by `crmbridge mappings init` on {when}.",
        "# Replace them with the definition marketing and sales agreed on (crmbridge's own",
        "# mappings/qualification.yaml is a commented BANT example). Until then every contact",
        "# with an e-mail address qualifies.",
        "version: starter-1",
        "name: starter",
        "match: all",
        "",
        "criteria:",
        "  - name: e-mail",
        "    property: email",
        "    op: present",
    ]
    if "jobtitle" in names:
        lines += [
            "  # - name: authority",
            "  #   property: jobtitle",
            "  #   op: in",
            "  #   values: [CEO, CFO, CIO]",
        ]
    return "\n".join(lines) + "\n"


def starter_map(
    schema: ObjectSchema, props: Sequence[PropertyInfo], *, now: datetime | None = None
) -> StarterMap:
    """The starter files for ``schema`` (the describe) and ``props`` (HubSpot's properties)."""
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    external = [f for f in schema.fields.values() if f.external_id and f.unique]
    hubspot_first = sorted(external, key=lambda f: ("hubspot" not in f.name.lower(), f.name))
    external_id = hubspot_first[0].name if hubspot_first else "HubSpot_Contact_Id__c"
    fields, paired, unpaired = _fields_text(schema, props, external_id, when)
    return StarterMap(
        fields=fields,
        stages=_stages_text(schema, props),
        qualification=_qualification_text(props, when),
        paired=paired,
        unpaired_fields=unpaired,
    )
