"""Evaluate the qualification rule set against contacts, with one readable reason per failure.

:class:`RuleSet` compiles a :class:`~crmbridge.rules.model.RuleSetSpec` once (parsers, value
sets, regexes, reason templates) because :meth:`RuleSet.evaluate` runs for every contact of a
pass. Contracts:

* ``evaluate`` never raises on contact data: an empty property fails the criterion with
  ``<name>: no value (HubSpot property "<p>" is empty)``, an unreadable number with
  ``<name>: "TBD" is not a number``; a ``reason`` template words only the comparison failure.
* Rules read text as the field map sends it (:func:`crmbridge.text.clean_text`: a lone
  surrogate is U+FFFD, C0 control characters but tab, line feed and carriage return are gone).
* A rule reads at most ``MAX_RULE_TEXT_CHARS`` characters: a longer value fails the criterion
  with its own reason (never judged on a prefix); ``present`` needs no reading and passes.
  ``matches`` runs on RE2 (:mod:`crmbridge.rules.patterns`): linear time, whatever the text.
* Every child of a group is evaluated (no short-circuit), so a rejected lead lists every
  criterion it missed.
* ``version`` is the file's ``version:`` or ``sha256:`` + 12 hex digits of ``content_hash``, the
  SHA-256 of the canonical JSON of the rules (comments and layout do not change it).
* A criterion with ``synonyms:`` reads the value through that table first ("Chief Executive
  Officer" is read as "CEO"); ``{value}`` in its reason is what it read, ``{raw}`` as typed.
* With ``tiers`` (:mod:`crmbridge.rules.grading`) the tier decides who qualifies; the score is
  the sum of the points of every criterion met, at any depth.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from crmbridge.model import CriterionResult, Qualification, SourceContact
from crmbridge.parsing import (
    QUOTE_MAX_CHARS,
    ParseFailure,
    format_number,
    parse_integer,
    parse_money,
    parse_number,
)
from crmbridge.rules.grading import Scored, grade
from crmbridge.rules.loader import parse_rule_set, read_rule_set
from crmbridge.rules.model import (
    MAX_RULE_TEXT_CHARS,
    OPERATORS,
    Criterion,
    Group,
    Op,
    Operand,
    ParseAs,
    Rule,
    RuleSetSpec,
    canonical,
)
from crmbridge.rules.patterns import compile_pattern
from crmbridge.synonyms import Synonyms
from crmbridge.text import clean_text
from crmbridge.yamlfile import Node

__all__ = ["RuleSet", "load_rule_set"]

_PARSERS: dict[ParseAs, Callable[[str], Decimal | int | ParseFailure]] = {
    ParseAs.MONEY: parse_money,
    ParseAs.INTEGER: parse_integer,
    ParseAs.NUMBER: parse_number,
}
_ORDER = {Op.GT: operator.gt, Op.GTE: operator.ge, Op.LT: operator.lt, Op.LTE: operator.le}
_GROUP_REASONS = {
    "all": "{name}: {failed}",
    "any": "{name}: none met: {failed}",
    "at_least": "{name}: {passed_count} of {total} met, {needed} needed: {failed}",
}

Test = Callable[[Any], bool]


def _show(value: Operand | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if len(value) <= QUOTE_MAX_CHARS else value[: QUOTE_MAX_CHARS - 1] + "…"
    return format_number(value)


def _words(text: str) -> str:
    """Text as compared: trimmed, inner whitespace (newlines in a textarea) as single spaces."""
    return " ".join(text.split())


def _test(c: Criterion) -> Test:
    """The comparison of ``c`` as one precompiled function of the (parsed) contact value."""
    if c.op in (Op.PRESENT, Op.ABSENT):
        return lambda _: c.op is Op.PRESENT  # the value is known non-empty here
    if c.op is Op.MATCHES:
        return compile_pattern(c.pattern or "", case_sensitive=c.case_sensitive)
    if c.op is Op.BETWEEN or c.op in _ORDER:
        return _order_test(c)
    return _equality_test(c)


def _order_test(c: Criterion) -> Test:
    """gt, gte, lt, lte, between: numbers only (the loader guarantees numeric operands)."""
    if c.op is Op.BETWEEN:
        low, high = c.min, c.max
        assert low is not None
        assert high is not None
        return lambda v: bool(low <= v <= high)
    compare, threshold = _ORDER[c.op], c.value
    assert isinstance(threshold, Decimal)
    return lambda v: bool(compare(v, threshold))


def _equality_test(c: Criterion) -> Test:
    """eq, ne, in, not_in, contains, contains_any: on text, trimmed and case-folded by default."""
    numeric = c.parse.numeric

    def fold(text: str) -> str:
        return _words(text) if c.case_sensitive else _words(text).casefold()

    def norm(v: Any) -> Any:
        return v if numeric else fold(v)

    if c.op in (Op.EQ, Op.NE):
        expected, equal = norm(c.value), c.op is Op.EQ
        return lambda v: (norm(v) == expected) is equal
    if c.op in (Op.IN, Op.NOT_IN):
        accepted, inside = frozenset(norm(x) for x in c.values), c.op is Op.IN
        return lambda v: (norm(v) in accepted) is inside
    needles = tuple(fold(str(x)) for x in ((c.value,) if c.op is Op.CONTAINS else c.values))

    def contains(v: Any) -> bool:
        haystack = fold(v)  # once, not once per needle
        return any(n in haystack for n in needles)

    return contains


class _Leaf:
    """A compiled :class:`Criterion`."""

    __slots__ = (
        "fixed",
        "missing",
        "name",
        "op",
        "parse",
        "points",
        "prop",
        "synonyms",
        "template",
        "test",
    )

    def __init__(self, c: Criterion, tables: Mapping[str, Synonyms]) -> None:
        spec = OPERATORS[c.op]
        self.name = c.name
        self.points = c.points
        self.synonyms = tables[c.synonyms] if c.synonyms else None
        self.prop = c.property
        self.op = c.op
        self.parse = _PARSERS.get(c.parse)
        self.test = _test(c)
        self.template = c.reason or (spec.number_reason if c.parse.numeric else spec.text_reason)
        self.missing = f'{c.name}: no value (HubSpot property "{c.property}" is empty)'
        self.fixed = {
            "name": c.name,
            "property": c.property,
            "threshold": _show(c.value),
            "values": ", ".join(_show(v) for v in c.values),
            "min": _show(c.min),
            "max": _show(c.max),
            "pattern": c.pattern or "",
        }

    def evaluate(self, contact: SourceContact) -> CriterionResult:
        raw = contact.get(self.prop)
        text = clean_text(raw if isinstance(raw, str) else ("" if raw is None else str(raw)))
        text = text.strip()
        if len(text) > MAX_RULE_TEXT_CHARS and self.op is not Op.PRESENT:
            return CriterionResult(self.name, passed=False, reason=self._too_long(len(text)))
        if not text:
            return self._empty()
        read = self.synonyms.canonical(text) if self.synonyms is not None else text
        value: str | Decimal | int = read
        if self.parse is not None:
            parsed = self.parse(read)
            if isinstance(parsed, ParseFailure):
                return CriterionResult(self.name, False, f"{self.name}: {parsed.message}")
            value = parsed
        if self.test(value):
            return CriterionResult(self.name, passed=True)
        return self._failed(value, text)

    def _empty(self) -> CriterionResult:
        if self.op is Op.ABSENT:
            return CriterionResult(self.name, passed=True)
        if self.op is not Op.PRESENT:
            return CriterionResult(self.name, passed=False, reason=self.missing)
        return self._failed("", "")

    def _too_long(self, length: int) -> str:
        return (
            f"{self.name}: the text is {length:,} characters long, "
            f"more than the {MAX_RULE_TEXT_CHARS:,} a rule reads"
        )

    def _failed(self, value: str | Decimal | int, text: str) -> CriterionResult:
        shown = _show(value)
        reason = self.template.format_map({**self.fixed, "value": shown, "raw": _show(text)})
        return CriterionResult(self.name, passed=False, reason=reason)


class _Group:
    """A compiled :class:`Group`."""

    __slots__ = ("children", "name", "needed", "points", "template")

    def __init__(self, g: Group, tables: Mapping[str, Synonyms]) -> None:
        self.name = g.name
        self.points = g.points
        self.children = tuple(_compile(c, tables) for c in g.criteria)
        self.needed = g.match.needed(len(self.children))
        self.template = g.reason or _GROUP_REASONS[g.match.kind]

    def evaluate(self, contact: SourceContact) -> CriterionResult:
        results = tuple(child.evaluate(contact) for child in self.children)
        passed = sum(r.passed for r in results)
        if passed >= self.needed:
            return CriterionResult(self.name, passed=True, children=results)
        failed = [r.reason or f"{r.name}: not met" for r in results if not r.passed]
        reason = self.template.format_map(
            {
                "name": self.name,
                "failed": "; ".join(failed),
                "failed_count": len(failed),
                "passed_count": passed,
                "needed": self.needed,
                "total": len(results),
            }
        )
        return CriterionResult(self.name, passed=False, reason=reason, children=results)


def _compile(rule: Rule, tables: Mapping[str, Synonyms]) -> _Leaf | _Group:
    return _Group(rule, tables) if isinstance(rule, Group) else _Leaf(rule, tables)


def _scored(rule: _Leaf | _Group, result: CriterionResult, into: list[Scored]) -> None:
    """Collect every criterion with points under ``rule`` (with its result), depth first."""
    if rule.points:
        into.append(Scored(rule.name, rule.points, result.passed))
    if isinstance(rule, _Group):
        for child, child_result in zip(rule.children, result.children, strict=True):
            _scored(child, child_result, into)


def _has_points(rule: _Leaf | _Group) -> bool:
    return bool(rule.points) or (
        isinstance(rule, _Group) and any(_has_points(c) for c in rule.children)
    )


def _properties(rules: tuple[Rule, ...]) -> frozenset[str]:
    props: set[str] = set()
    for rule in rules:
        props |= _properties(rule.criteria) if isinstance(rule, Group) else {rule.property}
    return frozenset(props)


class RuleSet:
    """The qualification definition marketing and sales agreed on, ready to evaluate.

    Immutable after construction; safe to share across threads.
    """

    def __init__(self, spec: RuleSetSpec, *, source: str = "<dict>") -> None:
        self.spec = spec
        self.source = source
        self.name = spec.name
        text = json.dumps(
            canonical(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        self.content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.version = spec.version or f"sha256:{self.content_hash[:12]}"
        self.source_properties = _properties(spec.criteria)
        self.tiers = spec.tiers
        self._top = tuple(_compile(c, spec.synonyms) for c in spec.criteria)
        self._needed = spec.match.needed(len(self._top))
        self._points = any(_has_points(c) for c in self._top)

    def __repr__(self) -> str:
        return f"RuleSet({self.name!r}, version={self.version!r}, source={self.source!r})"

    def __reduce__(self) -> tuple[Any, tuple[RuleSetSpec], dict[str, str]]:
        # Picklable by its spec (compiled patterns are not): rebuilt on the other side.
        return (RuleSet, (self.spec,), {"source": self.source})

    def __setstate__(self, state: dict[str, str]) -> None:
        self.source = state["source"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> RuleSet:
        """Build from plain data shaped like ``qualification.yaml``; raises ConfigError like
        :func:`load_rule_set`, with key paths (``<dict>:criteria[0].op``) instead of lines."""
        return cls(parse_rule_set(Node(data, source)), source=source)

    def evaluate(self, contact: SourceContact) -> Qualification:
        """Judge ``contact``: every top-level criterion's result, and whether enough passed
        (or, with tiers, its tier and whether that tier syncs)."""
        results = tuple(rule.evaluate(contact) for rule in self._top)
        scored: list[Scored] = []
        if self._points:
            for rule, result in zip(self._top, results, strict=True):
                _scored(rule, result, scored)
        if not self.tiers:
            score = sum(s.points for s in scored if s.passed) if self._points else None
            passed = sum(r.passed for r in results)
            return Qualification(
                qualified=passed >= self._needed,
                rule_set_version=self.version,
                results=results,
                score=score,
            )
        graded = grade(self.tiers, results, scored)
        tier = graded.tier
        return Qualification(
            qualified=graded.qualified,
            rule_set_version=self.version,
            results=results,
            tier=tier.name if tier else None,
            score=graded.score,
            stage=tier.stage if tier else None,
            fields=dict(tier.set) if tier else {},
            grade_reasons=graded.reasons,
        )


def load_rule_set(path: Path) -> RuleSet:
    """Load ``qualification.yaml``; raises ConfigError listing every problem with ``file:line``."""
    return RuleSet(read_rule_set(path), source=str(path))
