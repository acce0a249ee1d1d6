"""Read ``qualification.yaml`` (or the same shape as plain data) into a rule-set spec.

Contract: :func:`read_rule_set` and :func:`parse_rule_set` return a valid
:class:`~crmbridge.rules.model.RuleSetSpec`, or raise :class:`~crmbridge.errors.ConfigError`
listing every problem with its ``file:line`` and a hint: unknown operator (with the valid ones),
wrong value type, missing or repeated name, ``at_least`` larger than the number of children,
a regex that does not compile, a reason template naming an unknown placeholder, and so on.
Everything a contact cannot break is checked here, so evaluation never has to.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from crmbridge.parsing import ParseFailure, parse_money, parse_number
from crmbridge.rules.filespec import GROUP, LEAF, OPERAND_KEYS, PROPERTY_NAME, RULE_SET
from crmbridge.rules.grading import parse_synonyms, parse_tiers
from crmbridge.rules.model import (
    GROUP_PLACEHOLDERS,
    MAX_GROUP_DEPTH,
    OPERATORS,
    Criterion,
    Group,
    Match,
    Op,
    Operand,
    ParseAs,
    Rule,
    RuleSetSpec,
    placeholders_for,
)
from crmbridge.rules.patterns import refusal
from crmbridge.yamlfile import (
    Node,
    Problems,
    check_keys,
    close_match_hint,
    get_bool,
    get_count,
    get_text,
    load_yaml,
)

__all__ = ["parse_rule_set", "read_rule_set"]

_LEAF_KEYS = tuple(k for k in LEAF.names if k not in OPERAND_KEYS)
_PROPERTY_NAME = re.compile(PROPERTY_NAME)
_MATCH_HINT = "write match: all, match: any, or match: {at_least: 2}"
# What people write for an operator, and the name crmbridge uses for it.
_OP_ALIASES = {
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "one_of": "in",
    "not in": "not_in",
    "regex": "matches",
}
_NUMBER_PARSERS = {
    ParseAs.MONEY: parse_money,
    ParseAs.INTEGER: parse_number,  # a threshold of 179.5 days is fine to compare against
    ParseAs.NUMBER: parse_number,
}
DEFAULT_NAME = "qualification"


def read_rule_set(path: Path) -> RuleSetSpec:
    """Load the rule file at ``path`` (messages name it as given)."""
    return parse_rule_set(load_yaml(path))


def parse_rule_set(root: Node) -> RuleSetSpec:
    """Validate a parsed rule document into a spec; raises ConfigError with every problem."""
    problems = Problems()
    if root.value is None:
        problems.add(root, "the file is empty", "start from the commented example in mappings/")
        problems.raise_if_any()
    spec = None
    if check_keys(root, problems, RULE_SET.names, required=RULE_SET.required, what="the rule set"):
        version_node = root.get("version")
        version = None
        if version_node is not None and not isinstance(version_node.value, str):
            # YAML reads 2026.10 as the number 2026.1: say so rather than record the wrong label.
            problems.add(
                version_node,
                f'"version" must be text, got {version_node.kind}',
                'quote it, e.g. version: "2026.1"',
            )
        else:
            version = get_text(root, "version", problems, what="the rule set")
        name = get_text(root, "name", problems, what="the rule set") or DEFAULT_NAME
        synonyms = parse_synonyms(root.get("synonyms"), problems)
        criteria = _children(root, problems, "the rule set", tables=synonyms)
        match = _match(root.get("match"), _count(root), problems)
        tiers = parse_tiers(root.get("tiers"), criteria, problems)
        if tiers and root.get("match") is not None:
            problems.add(
                root.get("match") or root,
                'with "tiers", the tiers decide which leads sync: "match" has no effect',
                "remove match:, or remove the tiers",
            )
        spec = RuleSetSpec(
            name=name,
            criteria=criteria,
            match=match,
            version=version,
            tiers=tiers,
            synonyms=synonyms,
        )
    problems.raise_if_any()
    assert spec is not None
    return spec


def _children(
    node: Node, problems: Problems, what: str, depth: int = 1, *, tables: Collection[str] = ()
) -> tuple[Rule, ...]:
    """The ``criteria:`` list of the rule set or a group (its entries at nesting ``depth``),
    names unique among siblings."""
    items = node.get("criteria")
    if items is None:
        return ()
    if not items.is_list or not items.value:
        problems.add(
            items,
            f'"criteria" of {what} must be a non-empty list',
            'each entry starts with "- name: ..."',
        )
        return ()
    rules: list[Rule] = []
    seen: set[str] = set()
    for item in items.elements():
        rule = _rule(item, problems, depth, tables)
        if rule is None:
            continue
        if rule.name in seen:
            problems.add(
                item,
                f'two criteria of {what} are named "{rule.name}"',
                "names appear in reject reasons and reports: make each one distinct",
            )
        seen.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def _count(node: Node) -> int:
    """How many entries the ``criteria:`` list has, valid or not (for ``at_least`` checks)."""
    items = node.get("criteria")
    return len(items.value) if items is not None and items.is_list else 0


def _match(node: Node | None, total: int, problems: Problems) -> Match:
    if node is None:
        return Match("all")
    value = node.value
    if isinstance(value, str) and value.strip() in ("all", "any"):
        return Match(value.strip())
    count = value.get("at_least") if node.is_mapping and len(value) == 1 else None
    if count is None or isinstance(count, bool) or not isinstance(count, int):
        problems.add(node, f'"match" cannot be {_shown(node)}', _MATCH_HINT)
        return Match("all")
    if total and not 1 <= count <= total:  # total 0: the missing criteria are reported
        problems.add(
            node,
            f"at_least {count} cannot be met by {total} criteria",
            f"use a number from 1 to {total}",
        )
    return Match("at_least", int(count))


def _shown(node: Node) -> str:
    return f'"{node.value}"' if isinstance(node.value, str) else node.kind


def _rule(item: Node, problems: Problems, depth: int, tables: Collection[str]) -> Rule | None:
    if not item.is_mapping:
        problems.add(
            item,
            f"a criterion must be a mapping of keys, got {item.kind}",
            'start it with "- name: ..." followed by its keys',
        )
        return None
    name = get_text(item, "name", problems, required=True, what="this criterion")
    what = f'criterion "{name}"' if name else "this criterion"
    if "criteria" in item.value:
        if depth > MAX_GROUP_DEPTH:
            problems.add(
                item,
                f"{what}: groups nest more than {MAX_GROUP_DEPTH} deep",
                "flatten the rules: a group of groups can usually be one group with match: all",
            )
            return None
        return _group(item, name, what, problems, depth, tables=tables)
    return _leaf(item, name, what, problems, tables)


def _group(
    item: Node,
    name: str | None,
    what: str,
    problems: Problems,
    depth: int,
    *,
    tables: Collection[str],
) -> Group | None:
    check_keys(item, problems, GROUP.names, what=f"{what} (a group)")
    children = _children(item, problems, what, depth + 1, tables=tables)
    count = _count(item)
    match = _match(item.get("match"), count, problems)
    reason = _template(item.get("reason"), GROUP_PLACEHOLDERS, problems, what)
    points = get_count(item, "points", problems, what=what)
    if name is None or len(children) != count:
        return None
    return Group(name=name, criteria=children, match=match, reason=reason, points=points)


def _leaf(
    item: Node, name: str | None, what: str, problems: Problems, tables: Collection[str]
) -> Criterion | None:
    op = _op(item, problems, what)
    allowed = _LEAF_KEYS + (OPERATORS[op].keys if op else OPERAND_KEYS)
    required = tuple(k for k in LEAF.required if k != "name")  # a missing name is reported above
    check_keys(item, problems, allowed, required=required, what=what)
    prop = get_text(item, "property", problems, what=what)
    if prop and _PROPERTY_NAME.fullmatch(prop) is None:
        problems.add(
            item.get("property") or item,
            f'"{prop}" is not a HubSpot property name',
            "use the property's internal name, e.g. jobtitle rather than Job Title",
        )
    parse = _parse_as(item, problems, what)
    case_sensitive = get_bool(item, "case_sensitive", problems, default=False, what=what)
    points = get_count(item, "points", problems, what=what)
    synonyms = get_text(item, "synonyms", problems, what=what)
    if synonyms is not None and synonyms not in tables:
        problems.add(
            item.get("synonyms") or item,
            f'{what}: no synonym table "{synonyms}"',
            close_match_hint(synonyms, sorted(tables), what="tables under synonyms:")
            if tables
            else 'define it under a top-level "synonyms:" key',
        )
    if op is None or parse is None:
        return None
    if not _op_fits_parse(item, op, parse, problems, what):
        return None  # operand types would only repeat the same mistake
    operands = _operands(item, op, parse, problems, what)
    reason = _template(item.get("reason"), placeholders_for(op), problems, what)
    if name is None or prop is None or operands is None:
        return None
    return Criterion(
        name=name,
        property=prop,
        op=op,
        parse=parse,
        value=operands.value,
        values=operands.values,
        min=operands.min,
        max=operands.max,
        pattern=operands.pattern,
        case_sensitive=case_sensitive,
        reason=reason,
        points=points,
        synonyms=synonyms,
    )


def _op_fits_parse(item: Node, op: Op, parse: ParseAs, problems: Problems, what: str) -> bool:
    spec = OPERATORS[op]
    if spec.numbers_only and not parse.numeric:
        problems.add(
            item.get("op") or item,
            f'{what}: "{op}" compares numbers, but the property is read as text',
            'add "parse: money", "parse: integer" or "parse: number"',
        )
        return False
    if spec.text_only and parse.numeric:
        problems.add(
            item.get("parse") or item,
            f'{what}: "{op}" works on text, but "parse: {parse}" reads a number',
            "remove the parse line",
        )
        return False
    return True


def _op(item: Node, problems: Problems, what: str) -> Op | None:
    node = item.get("op")
    if node is None:
        return None  # reported by check_keys as missing
    text = node.value.strip() if isinstance(node.value, str) else None
    try:
        return Op(text or "")
    except ValueError:
        valid = list(LEAF.enum("op"))
        alias = _OP_ALIASES.get(text or "")
        hint = (
            f'write "{alias}" for {text}; valid operators: {", ".join(valid)}'
            if alias
            else close_match_hint(str(node.value), valid, what="valid operators")
        )
        problems.add(node, f'{what}: unknown operator "{node.value}"', hint)
        return None


def _parse_as(item: Node, problems: Problems, what: str) -> ParseAs | None:
    node = item.get("parse")
    if node is None:
        return ParseAs.TEXT
    try:
        return ParseAs(node.value)
    except ValueError:
        valid = list(LEAF.enum("parse"))
        problems.add(
            node,
            f'{what}: cannot parse as "{node.value}"',
            close_match_hint(str(node.value), valid, what="valid choices"),
        )
        return None


@dataclass(frozen=True)
class _Operands:
    value: Operand | None = None
    values: tuple[Operand, ...] = ()
    min: Decimal | None = None
    max: Decimal | None = None
    pattern: str | None = None


_EXAMPLES = {
    "value": "e.g. value: 50000",
    "values": "e.g. values: [CEO, CFO]",
    "min": "e.g. min: 10 and max: 20",
    "max": "e.g. min: 10 and max: 20",
    "pattern": "e.g. pattern: '^(vp|chief)'",
}


def _operands(
    item: Node, op: Op, parse: ParseAs, problems: Problems, what: str
) -> _Operands | None:
    """The operator's operands, typed: ``value``, ``values``, ``min``/``max`` or ``pattern``."""
    nodes: dict[str, Node] = {}
    for key in OPERATORS[op].keys:
        node = item.get(key)
        if node is None:
            problems.add(item, f'{what}: "{op}" needs "{key}"', _EXAMPLES[key])
        else:
            nodes[key] = node
    if len(nodes) < len(OPERATORS[op].keys):
        return None
    ok = True
    operands = _Operands()
    if "value" in nodes:
        value = _operand(nodes["value"], parse, problems, what)
        operands, ok = replace(operands, value=value), value is not None
    elif "values" in nodes:
        values = _operand_list(nodes["values"], parse, problems, what)
        operands, ok = replace(operands, values=values or ()), values is not None
    elif "pattern" in nodes:
        pattern = _pattern(nodes["pattern"], problems, what)
        operands, ok = replace(operands, pattern=pattern), pattern is not None
    elif "min" in nodes:
        low = _operand(nodes["min"], ParseAs.NUMBER, problems, what)
        high = _operand(nodes["max"], ParseAs.NUMBER, problems, what)
        if not isinstance(low, Decimal) or not isinstance(high, Decimal):
            return None
        operands = replace(operands, min=low, max=high)
        if low > high:
            problems.add(nodes["min"], f"{what}: min {low} is above max {high}", "swap them")
    return operands if ok else None


def _operand(node: Node, parse: ParseAs, problems: Problems, what: str) -> Operand | None:
    value = node.plain()
    if parse.numeric:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        parsed = _NUMBER_PARSERS[parse](value) if isinstance(value, str) else None
        if parsed is None or isinstance(parsed, ParseFailure):
            problems.add(
                node,
                f"{what}: expected a number, got {_shown(node)}",
                "write a number such as 50000, 75000.50 or 50k",
            )
            return None
        return Decimal(parsed)
    if not isinstance(value, str) or not value.strip():
        problems.add(
            node,
            f"{what}: expected text, got {_shown(node)}",
            'quote it ("10"), or add "parse: number" to compare numbers',
        )
        return None
    return value.strip()


def _operand_list(
    node: Node, parse: ParseAs, problems: Problems, what: str
) -> tuple[Operand, ...] | None:
    if not node.is_list or not node.value:
        problems.add(node, f'{what}: "values" must be a non-empty list', "e.g. values: [CEO, CFO]")
        return None
    values = [_operand(item, parse, problems, what) for item in node.elements()]
    return tuple(v for v in values if v is not None) if None not in values else None


_PATTERN_HINT = (
    "crmbridge matches with RE2, which takes linear time on any text: backreferences (\\1) and "
    "lookaround ((?=...), (?!...), (?<=...), (?<!...)) are not available, the end of the text is "
    "\\z (not \\Z); in YAML, put the pattern in single quotes"
)


def _pattern(node: Node, problems: Problems, what: str) -> str | None:
    if not isinstance(node.value, str) or not node.value:
        problems.add(node, f"{what}: a pattern must be text, got {node.kind}", "quote it")
        return None
    refused = refusal(node.value)
    if refused is not None:
        message = (
            "the pattern uses a feature the linear-time matcher (RE2) does not have"
            if refused.unsupported
            else "the pattern does not compile"
        )
        problems.add(node, f"{what}: {message}: {refused.detail}", _PATTERN_HINT)
        return None
    return str(node.value)


def _template(
    node: Node | None, allowed: Collection[str], problems: Problems, what: str
) -> str | None:
    """A reason template whose ``{placeholders}`` are all known (checked now, never per contact)."""
    if node is None:
        return None
    if not isinstance(node.value, str) or not node.value.strip():
        problems.add(node, f"{what}: a reason must be text, got {node.kind}", "quote it")
        return None
    hint = "placeholders here: " + ", ".join(f"{{{p}}}" for p in sorted(allowed))
    try:
        fields = [
            (field, spec, conversion)
            for _, field, spec, conversion in string.Formatter().parse(node.value)
            if field is not None
        ]
    except ValueError as exc:
        problems.add(
            node, f"{what}: the reason has a stray brace ({exc})", hint + "; write {{ for {"
        )
        return None
    for field, spec, conversion in fields:
        refused = _placeholder_problem(field, spec, conversion, allowed)
        if refused is not None:
            message, field_hint = refused
            problems.add(node, f"{what}: {message}", field_hint or hint)
            return None
    return str(node.value)


def _placeholder_problem(
    field: str, spec: str | None, conversion: str | None, allowed: Collection[str]
) -> tuple[str, str | None] | None:
    """What is wrong with one ``{placeholder}`` of a reason (message, specific hint), or None."""
    if not field:
        return '"{}" in the reason names no placeholder', None
    if field not in allowed:
        return f'unknown placeholder "{{{field}}}" in the reason', None
    if spec or conversion:
        # A reason is a sentence: padding ({value:>999999999}) could only bloat it.
        written = f"{{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
        return (
            f'"{written}" in the reason has a format (after ":" or "!"), which reasons do not take',
            f"write the bare placeholder, e.g. {{{field}}}",
        )
    return None
