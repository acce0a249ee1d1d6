"""The field map at work: one HubSpot contact in, one Salesforce Lead payload (or its reasons) out.

:class:`FieldMapping` is what :func:`crmbridge.mapping.load_mapping` returns. Two contracts:

* :meth:`FieldMapping.map` never raises on bad data. Every problem of a contact comes back at once
  as a :class:`~crmbridge.model.Reason` (codes ``REQUIRED``, ``PARSE_ERROR``, ``INVALID_EMAIL``,
  ``STRING_TOO_LONG``, ``INVALID_PICKLIST``, ``UNMAPPED_VALUE``, ``NUMBER_OUTSIDE_VALID_RANGE``),
  so Salesforce never sees a record it would refuse for a reason we could know beforehand
  (docs/traps.md: traps 4, 10, 11, 12).
* Text goes out as :func:`crmbridge.text.clean_text` leaves it: a lone UTF-16 surrogate becomes
  U+FFFD and C0 control characters other than tab, line feed and carriage return are removed,
  so nothing Salesforce receives (or a payload hash reads) lacks a UTF-8 form.
* :meth:`FieldMapping.check_schema` compares the map with the Salesforce describe before a pass
  and returns problems located in ``fields.yaml`` / ``stages.yaml``; it does not raise.

Per-schema lookups (field specs, active picklist values) are built once per schema object and
reused for every contact of a pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from crmbridge.errors import ConfigProblem, Location
from crmbridge.mapping.stages import StageMap
from crmbridge.mapping.transforms import (
    Transform,
    TransformFailure,
    TransformOptions,
    Value,
    salesforce_length,
    truncate_text,
)
from crmbridge.model import (
    FieldSpec,
    FieldValue,
    MappedLead,
    MapResult,
    ObjectSchema,
    Reason,
    SourceContact,
)
from crmbridge.parsing import ParseFailure, format_number, parse_boolean, parse_number
from crmbridge.parsing import quoted as _quoted
from crmbridge.text import clean_text
from crmbridge.yamlfile import close_match_hint

__all__ = ["FieldMapping", "FieldRule", "OnParseError", "Unmapped"]

NUMERIC_TYPES = frozenset({"currency", "double", "percent", "int", "long"})


class Unmapped(StrEnum):
    """What a ``value_map`` does with a value it has no entry for."""

    KEEP = "keep"  # send it as it is (a restricted picklist may then refuse it: INVALID_PICKLIST)
    DROP = "drop"  # leave the field out of the payload
    REJECT = "reject"  # reject the contact (UNMAPPED_VALUE)
    DEFAULT = "default"  # send the field's `default`


class OnParseError(StrEnum):
    REJECT = "reject"
    OMIT = "omit"


@dataclass(frozen=True)
class FieldRule:
    """How one Salesforce field gets its value: a HubSpot property run through transforms, or a
    constant. ``locations`` point at the lines that preflight problems name (keys ``value``,
    ``default``, ``truncate`` and ``value_map:<hubspot value>``)."""

    target: str
    location: Location
    source: str | None = None
    constant: FieldValue = None
    transforms: tuple[Transform, ...] = ()
    required: bool = False
    default: FieldValue = None
    has_default: bool = False
    truncate: bool = False
    value_map: Mapping[str, FieldValue] | None = None  # keys trimmed and case-folded
    unmapped: Unmapped = Unmapped.KEEP
    clear_when_empty: bool = False
    on_parse_error: OnParseError = OnParseError.REJECT
    locations: Mapping[str, Location] = field(default_factory=dict)

    def fixed_outputs(self) -> Iterator[tuple[FieldValue, Location]]:
        """Every value this rule can send that the file spells out, with where it is written."""
        if self.source is None:
            yield self.constant, self.locations.get("value", self.location)
            return
        if self.has_default:
            yield self.default, self.locations.get("default", self.location)
        for key, value in (self.value_map or {}).items():
            yield value, self.locations.get(f"value_map:{key}", self.location)


class _Omit:
    """A field that sends nothing (unlike ``None``, which clears it in Salesforce)."""


_OMIT = _Omit()
_Result = FieldValue | Reason | _Omit


@dataclass(frozen=True)
class _Target:
    """One field's describe facts, prepared for the per-contact hot path."""

    spec: FieldSpec | None
    active: frozenset[str] | None  # active values when the picklist is restricted
    numeric: bool
    boolean: bool


def _target(spec: FieldSpec | None) -> _Target:
    if spec is None:
        return _Target(None, None, numeric=False, boolean=False)
    active = frozenset(spec.active_values) if spec.restricted_picklist else None
    return _Target(spec, active, spec.type in NUMERIC_TYPES, spec.type == "boolean")


def _reason(target: str, code: str, message: str) -> Reason:
    return Reason(f"mapping.{target}", f"{target}: {message}", code, (target,))


def _json_number(value: Decimal | int) -> int | float:
    if isinstance(value, int):
        return value
    return int(value) if value == value.to_integral_value() else float(value)


class FieldMapping:
    """The loaded ``fields.yaml`` (+ ``stages.yaml``): immutable, safe to share across threads."""

    def __init__(
        self,
        *,
        target_object: str,
        external_id_field: str,
        rules: tuple[FieldRule, ...],
        stage_map: StageMap | None = None,
        options: TransformOptions | None = None,
        locations: Mapping[str, Location] | None = None,
    ) -> None:
        self.target_object = target_object
        self.external_id_field = external_id_field
        self.rules = rules
        self.stage_map = stage_map
        self.options = options or TransformOptions()
        #: Where the top-level keys sit (``object``, ``external_id``, ``fields``), for preflight.
        self.locations: Mapping[str, Location] = locations or {}
        self.source_properties: frozenset[str] = frozenset(
            r.source for r in rules if r.source is not None
        ) | (stage_map.source_properties if stage_map else frozenset())
        self._plan_lock = threading.Lock()
        self._plan: tuple[ObjectSchema, tuple[_Target, ...], _Target | None] | None = None

    def stage_of(self, contact: SourceContact) -> str | None:
        """The stage map's value for ``contact`` (first matching stage, else its default)."""
        return self.stage_map.status_of(contact) if self.stage_map else None

    def check_schema(self, schema: ObjectSchema) -> list[ConfigProblem]:
        """Problems between this map and the Salesforce describe, each at its line; [] when fine."""
        return _preflight(self, schema)

    def _targets(self, schema: ObjectSchema) -> tuple[tuple[_Target, ...], _Target | None]:
        plan = self._plan
        if plan is None or plan[0] is not schema:
            with self._plan_lock:
                targets = tuple(_target(schema.field(rule.target)) for rule in self.rules)
                stage = _target(schema.field(self.stage_map.target)) if self.stage_map else None
                plan = (schema, targets, stage)
                self._plan = plan
        return plan[1], plan[2]

    def map(self, contact: SourceContact, schema: ObjectSchema) -> MapResult:
        """``contact`` as a Lead payload keyed by field API name, or every reason it cannot be one.

        The external id field is always ``contact.id``; values are JSON-ready. Never raises on
        bad data.
        """
        targets, stage_target = self._targets(schema)
        payload: dict[str, FieldValue] = {self.external_id_field: contact.id}
        reasons: list[Reason] = []
        for rule, target in zip(self.rules, targets, strict=True):
            result = self._map_field(rule, target, contact)
            if isinstance(result, Reason):
                reasons.append(result)
            elif not isinstance(result, _Omit):
                payload[rule.target] = result
        if self.stage_map is not None and stage_target is not None:
            status = self.stage_map.status_of(contact)
            if status is not None:
                checked = _check_text(self.stage_map.target, status, stage_target, truncate=False)
                if isinstance(checked, Reason):
                    reasons.append(checked)
                else:
                    payload[self.stage_map.target] = checked
        if reasons:
            return MapResult(lead=None, reasons=tuple(reasons))
        return MapResult(lead=MappedLead(contact.id, payload))

    def _map_field(self, rule: FieldRule, target: _Target, contact: SourceContact) -> _Result:
        if rule.source is None:
            return _finish(rule, rule.constant, target)
        raw = contact.get(rule.source)
        if raw is not None and not isinstance(raw, str):  # a caller's bug must not crash a pass
            raw = str(raw)
        if raw is not None:
            raw = clean_text(raw)
        if raw is None or not raw.strip():
            return _when_empty(rule, target)
        value = self._transform(rule, raw)
        if isinstance(value, Reason | _Omit):
            return value
        if isinstance(value, str) and not value:
            return _when_empty(rule, target)  # e.g. `digits` of "n/a"
        mapped = _look_up(rule, value) if rule.value_map is not None else value
        if isinstance(mapped, Reason | _Omit):
            return mapped
        return _finish(rule, mapped, target)

    def _transform(self, rule: FieldRule, raw: str) -> Value | Reason | _Omit:
        value: Value = raw
        for transform in rule.transforms:
            result = transform.apply(value, self.options)
            if isinstance(result, TransformFailure):
                if transform.parses and rule.on_parse_error is OnParseError.OMIT:
                    return _OMIT
                return _reason(
                    rule.target, result.code, f'{result.message} (HubSpot property "{rule.source}")'
                )
            value = result
        return value


def _look_up(rule: FieldRule, value: Value) -> FieldValue | Value | Reason | _Omit:
    """``value`` through the rule's value_map, with the ``unmapped`` policy for a miss."""
    assert rule.value_map is not None
    if not isinstance(value, str):
        return value  # the loader only allows value maps on text
    key = value.strip().casefold()
    if key in rule.value_map:
        return rule.value_map[key]
    if rule.unmapped is Unmapped.DROP:
        return _OMIT
    if rule.unmapped is Unmapped.REJECT:
        return _reason(
            rule.target,
            "UNMAPPED_VALUE",
            f'HubSpot value {_quoted(value)} of "{rule.source}" has no entry in the value_map',
        )
    return rule.default if rule.unmapped is Unmapped.DEFAULT else value


def _when_empty(rule: FieldRule, target: _Target) -> _Result:
    if rule.has_default:
        return _finish(rule, rule.default, target)
    if rule.required:
        return _reason(
            rule.target, "REQUIRED", f'required, but HubSpot property "{rule.source}" is empty'
        )
    return None if rule.clear_when_empty else _OMIT


def _finish(rule: FieldRule, value: FieldValue | Value, target: _Target) -> _Result:
    """Fit ``value`` to the Salesforce field: number, true/false, or text (length, picklist)."""
    if value is None:
        return None if rule.clear_when_empty else _OMIT
    if target.numeric:
        return _fit_number(rule, value, target)
    if target.boolean and isinstance(value, str):
        parsed = parse_boolean(value)
        if isinstance(parsed, ParseFailure):
            return _parse_failure(rule, parsed.message)
        return parsed
    if target.spec is None or target.boolean:  # unknown field: preflight reports it
        return _json_number(value) if isinstance(value, Decimal) else value
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal | int | float):
        text = format_number(value)
    else:
        text = value
    return _check_text(rule.target, text, target, truncate=rule.truncate)


def _parse_failure(rule: FieldRule, message: str) -> Reason | _Omit:
    if rule.on_parse_error is OnParseError.OMIT:
        return _OMIT
    return _reason(rule.target, "PARSE_ERROR", f'{message} (HubSpot property "{rule.source}")')


def _fit_number(rule: FieldRule, value: FieldValue | Value, target: _Target) -> _Result:
    spec = target.spec
    assert spec is not None
    if isinstance(value, bool):
        return _parse_failure(rule, f"{str(value).lower()} is not a number")
    if isinstance(value, str):
        parsed = parse_number(value)
        if isinstance(parsed, ParseFailure):
            return _parse_failure(rule, parsed.message)
        number = parsed
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif value is None:
        return _OMIT
    else:
        number = Decimal(value)
    too_big = _range_problem(spec, number)
    if too_big is not None:
        return _reason(
            rule.target, "NUMBER_OUTSIDE_VALID_RANGE", f"{format_number(number)} {too_big}"
        )
    if spec.precision > 0 or spec.type == "int":
        # Salesforce rounds to the field's scale on save; rounding here keeps payload hashes
        # equal to what Salesforce stores. In range, the result fits Decimal's 28 digits.
        number = number.quantize(Decimal(1).scaleb(-spec.scale), rounding=ROUND_HALF_UP)
    return _json_number(number)


#: Salesforce `int` fields are 32-bit whatever digits the describe reports.
INT_MAX = 2_147_483_647


def _range_problem(spec: FieldSpec, number: Decimal) -> str | None:
    """Why ``number`` does not fit the field (what Salesforce calls NUMBER_OUTSIDE_VALID_RANGE)."""
    if spec.type == "int" and abs(number) > INT_MAX:
        return f"is outside the range of a Salesforce whole-number field (±{INT_MAX})"
    if spec.precision > 0:
        whole_digits = spec.precision - spec.scale
        if abs(number) >= Decimal(10) ** whole_digits:
            return (
                f"has more than the {whole_digits} digits before the decimal point "
                "that Salesforce allows"
            )
    return None


def _check_text(name: str, text: str, target: _Target, *, truncate: bool) -> str | Reason:
    text = clean_text(text)  # constants and value_map entries too: YAML can spell "\ud83d"
    spec = target.spec
    if target.active is not None:
        values = text.split(";") if spec is not None and spec.type == "multipicklist" else (text,)
        bad = [v for v in values if v not in target.active]
        if bad:
            return _reason(
                name,
                "INVALID_PICKLIST",
                f"{_quoted(bad[0])} is not an active value of the restricted picklist",
            )
    if spec is not None and spec.length > 0:
        length = salesforce_length(text)
        if length > spec.length:
            if truncate:
                return truncate_text(text, spec.length)
            return _reason(
                name,
                "STRING_TOO_LONG",
                f"{length} characters, more than the {spec.length} Salesforce allows",
            )
    return text


# --- preflight against the describe -------------------------------------------------------------


def _preflight(mapping: FieldMapping, schema: ObjectSchema) -> list[ConfigProblem]:
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
        problems.append(_unknown_field(mapping.external_id_field, schema, ext_at))
    elif not ext.external_id:
        problems.append(
            ConfigProblem(
                ext_at,
                f'"{ext.name}" is not an External ID field on {schema.name}',
                "mark it External ID (and Unique) in Salesforce Setup, or name the field that is",
            )
        )
    for rule in mapping.rules:
        spec = schema.field(rule.target)
        if spec is None:
            problems.append(_unknown_field(rule.target, schema, rule.location))
            continue
        problems.extend(_access(spec, rule.location))
        for value, location in rule.fixed_outputs():
            problems.extend(_fixed_value(spec, value, location, truncate=rule.truncate))
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


def _unknown_field(name: str, schema: ObjectSchema, location: Location) -> ConfigProblem:
    return ConfigProblem(
        location,
        f'{schema.name} has no field "{name}" (or this user cannot see it)',
        close_match_hint(name, sorted(schema.fields), what=f"{schema.name} fields"),
    )


def _access(spec: FieldSpec, location: Location) -> list[ConfigProblem]:
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


def _fixed_value(
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
        return [_unknown_field(stage_map.target, schema, stage_map.target_location)]
    problems = _access(spec, stage_map.target_location)
    for stage in stage_map.stages:
        problems.extend(_fixed_value(spec, stage.status, stage.status_location, truncate=False))
    if stage_map.default is not None:
        default_at = stage_map.default_location or stage_map.target_location
        problems.extend(_fixed_value(spec, stage_map.default, default_at, truncate=False))
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
