"""Read ``fields.yaml`` and ``stages.yaml`` into a :class:`~crmbridge.mapping.mapper.FieldMapping`.

Contract of :func:`load_mapping`: it returns a ready mapping, or raises
:class:`~crmbridge.errors.ConfigError` listing every problem of both files at once, each with its
``file:line`` and a hint. It checks what the files alone can tell (shape, types, unknown
transforms, contradictory options); what needs Salesforce's describe is
:meth:`FieldMapping.check_schema`'s job.
"""

from __future__ import annotations

import re
from pathlib import Path

from crmbridge.errors import ConfigError, Location
from crmbridge.mapping.filespec import API_NAME, FIELD, FIELD_MAP, PROPERTY_NAME
from crmbridge.mapping.mapper import (
    DEFAULT_LEAD_SOURCE,
    FieldMapping,
    FieldRule,
    OnParseError,
    Unmapped,
)
from crmbridge.mapping.policies import DEFAULT_PLACEHOLDER, Incomplete, UpdatePolicy
from crmbridge.mapping.stages import StageMap
from crmbridge.mapping.stages_loader import PROPERTY_HINT as _PROPERTY_HINT
from crmbridge.mapping.stages_loader import STAGES_FILE, parse_stages
from crmbridge.mapping.transforms import TRANSFORMS, Kind, Transform, TransformOptions
from crmbridge.model import FieldValue
from crmbridge.yamlfile import (
    Node,
    Problems,
    check_keys,
    child_or_self,
    close_match_hint,
    get_bool,
    get_choice,
    get_text,
    load_yaml,
)

__all__ = ["FIELDS_FILE", "STAGES_FILE", "load_mapping"]

FIELDS_FILE = "fields.yaml"

_API_NAME = re.compile(API_NAME)
_PROPERTY_NAME = re.compile(PROPERTY_NAME)


def load_mapping(mappings_dir: Path) -> FieldMapping:
    """Load a directory's field map (``fields.yaml``) and stage map (``stages.yaml``, optional).

    Raises ConfigError listing every problem found in both files.
    """
    problems = Problems()
    fields_root = _read(mappings_dir / FIELDS_FILE, problems)
    stages_path = mappings_dir / STAGES_FILE
    stages_root = _read(stages_path, problems) if stages_path.exists() else None
    mapping = _parse_fields(fields_root, problems) if fields_root is not None else None
    stage_map = parse_stages(stages_root, problems) if stages_root is not None else None
    if mapping is not None and stage_map is not None:
        _check_stage_target(mapping, stage_map, problems)
    problems.raise_if_any()
    assert mapping is not None  # no problems means fields.yaml parsed
    return FieldMapping(
        target_object=mapping.target_object,
        external_id_field=mapping.external_id_field,
        rules=mapping.rules,
        stage_map=stage_map,
        options=mapping.options,
        locations=mapping.locations,
        placeholder=mapping.placeholder,
        lead_source=mapping.lead_source,
        exception_field=mapping.exception_field,
    )


def _read(path: Path, problems: Problems) -> Node | None:
    try:
        root = load_yaml(path)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    if root.value is None:
        problems.add(root, "the file is empty", "start from the commented example in mappings/")
        return None
    return root


def _parse_fields(root: Node, problems: Problems) -> FieldMapping | None:
    if not check_keys(
        root, problems, FIELD_MAP.names, required=FIELD_MAP.required, what=FIELDS_FILE
    ):
        return None
    target_object = get_text(root, "object", problems, what=FIELDS_FILE) or "Lead"
    external_id = get_text(root, "external_id", problems, what=FIELDS_FILE) or ""
    options = TransformOptions(
        allow_international_email=get_bool(
            root, "allow_international_email", problems, default=False, what=FIELDS_FILE
        )
    )
    placeholder = get_text(root, "placeholder", problems, what=FIELDS_FILE) or DEFAULT_PLACEHOLDER
    lead_source = get_text(root, "lead_source", problems, what=FIELDS_FILE) or DEFAULT_LEAD_SOURCE
    if _PROPERTY_NAME.fullmatch(lead_source) is None:
        problems.add(
            child_or_self(root, "lead_source"),
            f'"{lead_source}" is not a HubSpot property name',
            _PROPERTY_HINT,
        )
    exception_field = get_text(root, "exception_field", problems, what=FIELDS_FILE)
    if exception_field is not None and _API_NAME.fullmatch(exception_field) is None:
        problems.add(
            child_or_self(root, "exception_field"),
            f'"{exception_field}" is not a Salesforce field API name',
            "name a text field of the Lead, e.g. CRMBridge_Exception__c, or remove the key",
        )
    locations = {k: child.location for k in FIELD_MAP.names if (child := root.get(k)) is not None}
    rules: list[FieldRule] = []
    fields_node = root.get("fields")
    if fields_node is not None:
        if not fields_node.is_mapping or not fields_node.value:
            problems.add(
                fields_node,
                '"fields" must map Salesforce field names to their source',
                'e.g. "LastName: {from: lastname, transforms: [trim], required: true}"',
            )
        for name, node in fields_node.items():
            rule = _parse_field(name, node, fields_node, problems, external_id)
            if rule is not None:
                rules.append(rule)
    return FieldMapping(
        target_object=target_object,
        external_id_field=external_id,
        rules=tuple(rules),
        options=options,
        locations=locations,
        placeholder=placeholder,
        lead_source=lead_source,
        exception_field=exception_field,
    )


def _parse_field(
    name: object, node: Node, parent: Node, problems: Problems, external_id: str
) -> FieldRule | None:
    if not isinstance(name, str) or _API_NAME.fullmatch(name) is None:
        problems.add(
            parent.key_node(name),
            f'"{name}" is not a Salesforce field API name',
            "use the API name from Setup > Object Manager, e.g. Company or Budget__c",
        )
        return None
    what = f'field "{name}"'
    if name == external_id:
        problems.add(
            node,
            f'"{name}" is the external id: crmbridge always sets it to the HubSpot contact id',
            "remove this entry",
        )
        return None
    if not check_keys(node, problems, FIELD.names, what=what):
        return None
    has_from, has_value = "from" in node.value, "value" in node.value
    if has_from == has_value:
        problems.add(
            node,
            f'{what} needs exactly one of "from" (a HubSpot property) and "value" (a constant)',
            'e.g. "{from: jobtitle}" or "{value: Web}"',
        )
        return None
    if has_value:
        extra = [k for k in node.value if k != "value"]
        if extra:
            problems.add(
                node.key_node(extra[0]),
                f'{what} is a constant: "{", ".join(extra)}" does not apply to it',
                'remove them, or read the value from HubSpot with "from:"',
            )
        return FieldRule(
            target=name,
            location=node.location,
            constant=_fixed(node.get("value"), problems, what),
            locations={"value": child_or_self(node, "value").location},
        )
        # A constant has no source to be missing and one value: policies do not apply to it.
    return _parse_source_field(name, node, problems, what)


def _parse_source_field(name: str, node: Node, problems: Problems, what: str) -> FieldRule:
    source = get_text(node, "from", problems, what=what) or ""
    from_node = node.get("from")
    if source and _PROPERTY_NAME.fullmatch(source) is None and from_node is not None:
        problems.add(from_node, f'"{source}" is not a HubSpot property name', _PROPERTY_HINT)
    transforms = _transforms(node.get("transforms"), problems, what)
    required = get_bool(node, "required", problems, default=False, what=what)
    clear = get_bool(node, "clear_when_empty", problems, default=False, what=what)
    has_default = "default" in node.value
    default = _fixed(node.get("default"), problems, what) if has_default else None
    if required and has_default:
        problems.add(
            node,
            f'{what} has both "required: true" and a "default"',
            "a default means it is never empty: keep one of the two",
        )
    if clear and (required or has_default):
        problems.add(
            node,
            f'{what}: "clear_when_empty" contradicts "required"/"default"',
            "an empty value is then either rejected or defaulted, never cleared",
        )
    locations = {
        k: child_or_self(node, k).location
        for k in ("default", "truncate", "update", "incomplete")
        if k in node.value
    }
    value_map = _value_map(node.get("value_map"), problems, what, locations)
    unmapped = get_choice(
        node, "unmapped", Unmapped, default=Unmapped.KEEP, problems=problems, what=what
    )
    if value_map is None and "unmapped" in node.value:
        problems.add(
            child_or_self(node, "unmapped"),
            f'{what}: "unmapped" needs a "value_map"',
            "add a value_map, or remove unmapped",
        )
    if unmapped is Unmapped.DEFAULT and not has_default:
        problems.add(
            child_or_self(node, "unmapped"),
            f'{what}: "unmapped: default" needs a "default"',
            'add e.g. "default: Other"',
        )
    if value_map is not None and transforms and transforms[-1].gives is not Kind.TEXT:
        problems.add(
            child_or_self(node, "value_map"),
            f'{what}: "value_map" looks up text, but "{transforms[-1].name}" gives '
            f"{transforms[-1].gives}",
            "map the text before converting it",
        )
    return FieldRule(
        target=name,
        location=node.location,
        source=source,
        transforms=transforms,
        required=required,
        default=default,
        has_default=has_default,
        truncate=get_bool(node, "truncate", problems, default=False, what=what),
        value_map=value_map,
        unmapped=unmapped,
        clear_when_empty=clear,
        on_parse_error=get_choice(
            node,
            "on_parse_error",
            OnParseError,
            default=OnParseError.REJECT,
            problems=problems,
            what=what,
        ),
        locations=locations,
        update=get_choice(
            node, "update", UpdatePolicy, default=UpdatePolicy.ALWAYS, problems=problems, what=what
        ),
        incomplete=get_choice(
            node,
            "incomplete",
            Incomplete,
            default=Incomplete.REJECT,
            problems=problems,
            what=what,
        ),
    )


def _fixed(node: Node | None, problems: Problems, what: str) -> FieldValue:
    """A constant the file spells out: text, a number or true/false."""
    if node is None:
        return None
    value = node.plain()
    if value is None or not isinstance(value, str | int | float | bool):
        problems.add(
            node,
            f"{what}: expected text, a number or true/false, got {node.kind}",
            "write one value on the same line; quote it to send it as text",
        )
        return None
    return value


def _transforms(node: Node | None, problems: Problems, what: str) -> tuple[Transform, ...]:
    if node is None:
        return ()
    if not node.is_list:
        problems.add(
            node,
            f'{what}: "transforms" must be a list, got {node.kind}',
            "e.g. transforms: [trim, lower]",
        )
        return ()
    chain: list[Transform] = []
    kind = Kind.TEXT  # HubSpot sends every value as text
    for item in node.elements():
        name = item.value
        transform = TRANSFORMS.get(name) if isinstance(name, str) else None
        if transform is None:
            hint = close_match_hint(str(name), sorted(TRANSFORMS), what="valid transforms")
            if name == "truncate":
                hint = 'truncation is a field option: write "truncate: true" instead'
            problems.add(item, f'{what}: unknown transform "{name}"', hint)
            continue
        if transform.takes is not kind:
            problems.add(
                item,
                f'{what}: "{transform.name}" works on {transform.takes}, but the transform '
                f"before it gives {kind}",
                "put text transforms (trim, lower …) before money/number/integer/boolean",
            )
        chain.append(transform)
        kind = transform.gives
    return tuple(chain)


def _value_map(
    node: Node | None, problems: Problems, what: str, locations: dict[str, Location]
) -> dict[str, FieldValue] | None:
    if node is None:
        return None
    if not node.is_mapping or not node.value:
        problems.add(
            node,
            f'{what}: "value_map" must map HubSpot values to Salesforce values',
            "e.g. value_map: {MANUFACTURING: Manufacturing}",
        )
        return None
    result: dict[str, FieldValue] = {}
    for key, child in node.items():
        if not isinstance(key, str | int) or isinstance(key, bool):
            problems.add(
                node.key_node(key), f'{what}: value_map key "{key}" must be text', "quote it"
            )
            continue
        folded = str(key).strip().casefold()
        if folded in result:
            problems.add(
                node.key_node(key),
                f'{what}: value_map has "{key}" twice',
                "matching ignores case and surrounding spaces: keep one entry",
            )
            continue
        result[folded] = _fixed(child, problems, what)
        locations[f"value_map:{folded}"] = child.location
    return result


def _check_stage_target(mapping: FieldMapping, stage_map: StageMap, problems: Problems) -> None:
    if stage_map.target == mapping.external_id_field:
        problems.add(
            stage_map.target_location,
            "the stage map cannot set the external id field",
            "point target: at the Lead's status field (Status)",
        )
    for rule in mapping.rules:
        if rule.target == stage_map.target:
            problems.add(
                rule.location,
                f'"{rule.target}" is set by {STAGES_FILE} (target: {stage_map.target})',
                f"remove it from {FIELDS_FILE}, or point the stage map at another field",
            )
