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
* A field with ``incomplete: placeholder`` or ``incomplete: omit`` turns its problem (a required
  value missing, an invalid one) into a :class:`~crmbridge.model.Flag` instead of a reason: the
  lead goes with the placeholder, or without the field, and a reviewer sees the flag.

Per-schema lookups (field specs, active picklist values) are built once per schema object and
reused for every contact of a pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from crmbridge.errors import Location
from crmbridge.mapping.policies import DEFAULT_PLACEHOLDER, Incomplete, UpdatePolicy
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
    NUMERIC_TYPES,
    FieldSpec,
    FieldValue,
    Flag,
    FlagAction,
    MappedLead,
    MapResult,
    ObjectSchema,
    Reason,
    SourceContact,
)
from crmbridge.parsing import ParseFailure, format_number, parse_boolean, parse_number
from crmbridge.parsing import quoted as _quoted
from crmbridge.text import clean_text

__all__ = ["FieldMapping", "FieldRule", "OnParseError", "Unmapped"]

#: Which HubSpot property says where a lead came from, unless ``lead_source:`` says otherwise:
#: HubSpot's "Original Source" (ORGANIC_SEARCH, PAID_SEARCH, EMAIL_MARKETING, REFERRALS …),
#: set by HubSpot for every contact. Pulled with every contact; reports group leads by it.
DEFAULT_LEAD_SOURCE = "hs_analytics_source"


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
    update: UpdatePolicy = UpdatePolicy.ALWAYS
    incomplete: Incomplete = Incomplete.REJECT

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
        placeholder: str = DEFAULT_PLACEHOLDER,
        lead_source: str = DEFAULT_LEAD_SOURCE,
        exception_field: str | None = None,
    ) -> None:
        self.target_object = target_object
        self.external_id_field = external_id_field
        self.rules = rules
        self.stage_map = stage_map
        self.options = options or TransformOptions()
        self.placeholder = placeholder
        #: The HubSpot property reports group leads by; pulled, never judged.
        self.lead_source = lead_source
        #: The text field marking a lead synced despite the rules (``None``: not written).
        self.exception_field = exception_field
        #: Where the top-level keys sit (``object``, ``external_id``, ``fields``), for preflight.
        self.locations: Mapping[str, Location] = locations or {}
        self.source_properties: frozenset[str] = frozenset(
            r.source for r in rules if r.source is not None
        ) | (stage_map.source_properties if stage_map else frozenset())
        #: Fields whose update policy is not ``always``, by field name.
        self.update_policies: Mapping[str, UpdatePolicy] = {
            r.target: r.update for r in rules if r.update is not UpdatePolicy.ALWAYS
        }
        self._plan_lock = threading.Lock()
        self._plan: tuple[ObjectSchema, tuple[_Target, ...], _Target | None] | None = None

    def __getstate__(self) -> dict[str, object]:
        # Picklable (a what-if sends the map to its worker processes): the lock and the
        # per-describe cache are rebuilt on the other side.
        state = dict(vars(self))
        del state["_plan_lock"]
        state["_plan"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        vars(self).update(state)
        self._plan_lock = threading.Lock()

    def stage_of(self, contact: SourceContact) -> str | None:
        """The stage map's value for ``contact`` (first matching stage, else its default)."""
        return self.stage_map.status_of(contact) if self.stage_map else None

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

        The external id field is always ``contact.id``; values are JSON-ready; the stage
        map's value is set as it matches (no ``moves`` policy: that needs the lead's history,
        see :mod:`crmbridge.judgement`). Never raises on bad data.
        """
        result = self.map_fields(contact, schema)
        if self.stage_map is None:
            return result
        name = self.stage_map.stage_name_for(contact)
        status = self.stage_value(name, schema) if name is not None else None
        return with_field(result, self.stage_map.target, status)

    def map_fields(self, contact: SourceContact, schema: ObjectSchema) -> MapResult:
        """``contact`` through ``fields.yaml`` alone (no stage): a payload or every reason, and
        the flags of values the ``incomplete`` choices let it go without. Never raises."""
        targets, _ = self._targets(schema)
        payload: dict[str, FieldValue] = {self.external_id_field: contact.id}
        reasons: list[Reason] = []
        flags: list[Flag] = []
        for rule, target in zip(self.rules, targets, strict=True):
            result = self._map_field(rule, target, contact)
            if isinstance(result, Reason) and rule.incomplete is not Incomplete.REJECT:
                placeholder = rule.incomplete is Incomplete.PLACEHOLDER
                action = FlagAction.PLACEHOLDER if placeholder else FlagAction.OMITTED
                flags.append(Flag(rule.target, result.code or "", result.message, action))
                result = self.placeholder if placeholder else _OMIT
            if isinstance(result, Reason):
                reasons.append(result)
            elif not isinstance(result, _Omit):
                payload[rule.target] = result
        if reasons:
            return MapResult(lead=None, reasons=tuple(reasons), flags=tuple(flags))
        return MapResult(lead=MappedLead(contact.id, payload), flags=tuple(flags))

    def stage_value(self, name: str, schema: ObjectSchema) -> str | Reason | None:
        """The stage map's target value for the stage called ``name``, checked against the
        describe (a reason when Salesforce would refuse it); ``None`` for no such stage."""
        if self.stage_map is None:
            return None
        status = self.stage_map.status_for(name)
        _, stage_target = self._targets(schema)
        if status is None or stage_target is None:
            return None
        return _check_text(self.stage_map.target, status, stage_target, truncate=False)

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


def with_field(result: MapResult, name: str, value: FieldValue | Reason | None) -> MapResult:
    """``result`` with one more field set (``None``: unchanged), or with its reason added."""
    if value is None:
        return result
    if isinstance(value, Reason):
        return MapResult(None, (*result.reasons, value), result.flags)
    if result.lead is None:
        return result
    fields = {**result.lead.fields, name: value}
    return MapResult(MappedLead(result.lead.contact_id, fields), result.reasons, result.flags)


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
