"""The field map checked against the Salesforce describe before a pass (``validate`` too).

:func:`preflight` returns every problem located in ``fields.yaml`` / ``stages.yaml``: unknown
fields, fields the integration user cannot write, constants and picklist values Salesforce
would refuse, fields Salesforce requires that the map may leave empty, and update or
``incomplete`` choices a field cannot take. It never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmbridge.errors import ConfigProblem, Location
from crmbridge.mapping.policies import Incomplete, UpdatePolicy
from crmbridge.mapping.transforms import salesforce_length
from crmbridge.model import NUMERIC_TYPES, TEXT_TYPES, FieldSpec, FieldValue, ObjectSchema
from crmbridge.parsing import ParseFailure, parse_number
from crmbridge.yamlfile import close_match_hint

if TYPE_CHECKING:
    from collections.abc import Mapping

    from crmbridge.mapping.mapper import FieldMapping, FieldRule
    from crmbridge.mapping.stages import StageMap

__all__ = [
    "access_problems",
    "fixed_value_problems",
    "preflight",
    "unknown_field",
]


def preflight(mapping: FieldMapping, schema: ObjectSchema) -> list[ConfigProblem]:
    """Every problem between ``mapping`` and the describe ``schema``, each at its line."""
    problems: list[ConfigProblem] = []
    where = mapping.locations
    top = where.get("fields", Location("fields.yaml"))
    if schema.name != mapping.target_object:
        problems.append(
            ConfigProblem(
                where.get("object", top),
                f'the map is for "{mapping.target_object}", '
                f'but Salesforce described "{schema.name}"',
                "set object: to the sObject crmbridge writes to (Lead)",
            )
        )
    ext = schema.field(mapping.external_id_field)
    ext_at = where.get("external_id", top)
    if ext is None:
        problems.append(unknown_field(mapping.external_id_field, schema, ext_at))
    elif not ext.external_id:
        problems.append(
            ConfigProblem(
                ext_at,
                f'"{ext.name}" is not an External ID field on {schema.name}',
                "mark it External ID (and Unique) in Salesforce Setup, or name the field that is",
            )
        )
    if mapping.exception_field is not None:
        problems.extend(_exception_field_problems(mapping.exception_field, schema, where, top))
    for rule in mapping.rules:
        spec = schema.field(rule.target)
        if spec is None:
            problems.append(unknown_field(rule.target, schema, rule.location))
            continue
        problems.extend(access_problems(spec, rule.location))
        problems.extend(_policy_problems(rule, spec, mapping.placeholder))
        for value, location in rule.fixed_outputs():
            problems.extend(fixed_value_problems(spec, value, location, truncate=rule.truncate))
        if rule.truncate and spec.type == "email":
            problems.append(
                ConfigProblem(
                    rule.locations.get("truncate", rule.location),
                    f'"{spec.name}" is an e-mail field: a cut address would be a wrong address',
                    "remove truncate: true; over-long addresses are then rejected",
                )
            )
    problems.extend(_stage_problems(mapping.stage_map, schema))
    problems.extend(_required_problems(mapping, schema, top))
    return problems


def _policy_problems(rule: FieldRule, spec: FieldSpec, placeholder: str) -> list[ConfigProblem]:
    """What ``update`` and ``incomplete`` cannot do to this Salesforce field."""
    problems: list[ConfigProblem] = []
    incomplete_at = rule.locations.get("incomplete", rule.location)
    if rule.incomplete is Incomplete.PLACEHOLDER:
        if spec.type not in TEXT_TYPES:
            problems.append(
                ConfigProblem(
                    incomplete_at,
                    f'"{spec.name}" is a {spec.type} field: the placeholder text cannot go in it',
                    "use incomplete: omit (the lead syncs without it, flagged) or reject",
                )
            )
        elif spec.length and salesforce_length(placeholder) > spec.length:
            problems.append(
                ConfigProblem(
                    incomplete_at,
                    f'the placeholder "{placeholder}" is longer than the {spec.length} '
                    f'characters of "{spec.name}"',
                    "shorten placeholder: at the top of the file",
                )
            )
    if rule.incomplete is Incomplete.OMIT and spec.required_on_create:
        problems.append(
            ConfigProblem(
                incomplete_at,
                f'Salesforce needs "{spec.name}" to create a record: a lead without it would '
                "be refused",
                "use incomplete: placeholder, or reject",
            )
        )
    if rule.update is UpdatePolicy.NEVER and spec.required_on_create:
        problems.append(
            ConfigProblem(
                rule.locations.get("update", rule.location),
                f'"{spec.name}" is never sent, but Salesforce needs it to create a record',
                "use update: on_create (sent when the lead is created, never changed after)",
            )
        )
    return problems


def _exception_field_problems(
    name: str, schema: ObjectSchema, where: Mapping[str, Location], top: Location
) -> list[ConfigProblem]:
    """The exception field must exist, take text and be writable."""
    at = where.get("exception_field", top)
    spec = schema.field(name)
    if spec is None:
        return [unknown_field(name, schema, at)]
    problems = access_problems(spec, at)
    if spec.type not in TEXT_TYPES:
        problems.append(
            ConfigProblem(
                at,
                f'"{name}" is a {spec.type} field: the exception note is text',
                "create a Text(255) or Long Text field for it, or remove exception_field:",
            )
        )
    return problems


def unknown_field(name: str, schema: ObjectSchema, location: Location) -> ConfigProblem:
    return ConfigProblem(
        location,
        f'{schema.name} has no field "{name}" (or this user cannot see it)',
        close_match_hint(name, sorted(schema.fields), what=f"{schema.name} fields"),
    )


def access_problems(spec: FieldSpec, location: Location) -> list[ConfigProblem]:
    missing = [
        verb for verb, ok in (("create", spec.createable), ("update", spec.updateable)) if not ok
    ]
    if not missing:
        return []
    return [
        ConfigProblem(
            location,
            f'"{spec.name}" cannot be written on {" or ".join(missing)} by this Salesforce user',
            "check field-level security for the integration user, or remove the field from the map",
        )
    ]


def fixed_value_problems(
    spec: FieldSpec, value: FieldValue, location: Location, *, truncate: bool
) -> list[ConfigProblem]:
    if value is None:
        return []
    if spec.type in NUMERIC_TYPES:
        if isinstance(value, str) and isinstance(parse_number(value), ParseFailure):
            return [
                ConfigProblem(
                    location,
                    f'"{value}" is not a number, but "{spec.name}" is a number field',
                    "write a plain number such as 50000",
                )
            ]
        return []
    text = value if isinstance(value, str) else str(value)
    if spec.restricted_picklist and text not in spec.active_values:
        return [
            ConfigProblem(
                location,
                f'"{text}" is not an active value of the restricted picklist "{spec.name}"',
                close_match_hint(text, spec.active_values, what="active values"),
            )
        ]
    if spec.length and salesforce_length(text) > spec.length and not truncate:
        return [
            ConfigProblem(
                location,
                f'"{text}" is longer than the {spec.length} characters of "{spec.name}"',
                "shorten it, or add truncate: true to the field",
            )
        ]
    return []


def _stage_problems(stage_map: StageMap | None, schema: ObjectSchema) -> list[ConfigProblem]:
    if stage_map is None:
        return []
    spec = schema.field(stage_map.target)
    if spec is None:
        return [unknown_field(stage_map.target, schema, stage_map.target_location)]
    problems = access_problems(spec, stage_map.target_location)
    for stage in stage_map.stages:
        problems.extend(
            fixed_value_problems(spec, stage.status, stage.status_location, truncate=False)
        )
    if stage_map.default is not None:
        default_at = stage_map.default_location or stage_map.target_location
        problems.extend(fixed_value_problems(spec, stage_map.default, default_at, truncate=False))
    return problems


def _required_problems(
    mapping: FieldMapping, schema: ObjectSchema, top: Location
) -> list[ConfigProblem]:
    by_target = {rule.target: rule for rule in mapping.rules}
    always_set = {mapping.external_id_field}
    if mapping.stage_map is not None and mapping.stage_map.default is not None:
        always_set.add(mapping.stage_map.target)
    problems: list[ConfigProblem] = []
    for spec in schema.fields.values():
        if not spec.required_on_create or spec.name in always_set:
            continue
        rule = by_target.get(spec.name)
        if rule is None:
            problems.append(
                ConfigProblem(
                    top,
                    f'"{spec.name}" is required to create a {schema.name}, '
                    "but the map does not set it",
                    f'add "{spec.name}: {{from: <HubSpot property>, required: true}}" '
                    f'or "{spec.name}: {{value: <constant>}}"',
                )
            )
        elif rule.source is not None and not rule.required and not rule.has_default:
            problems.append(
                ConfigProblem(
                    rule.location,
                    f'"{spec.name}" is required to create a {schema.name}, but an empty '
                    f'"{rule.source}" would leave it out and Salesforce would refuse the record',
                    'add "required: true" (reject such contacts with a reason) or a "default:"',
                )
            )
    return problems
