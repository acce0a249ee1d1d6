"""Tiers, scores and synonym tables of a rule set: reading them from the file, and grading.

A rule set without ``tiers`` qualifies a lead when its criteria combine as ``match`` says. With
tiers, it grades: tiers are tried best first, and the first one a lead reaches (every
``requires`` criterion met, a score of at least ``min_score``) is its tier; the tier's ``sync``
decides whether it goes to Salesforce. The score is the sum of the ``points`` of every criterion
the lead meets, at any depth. A lead that does not sync gets reasons a reviewer can act on:
which tier it reached and what the lowest syncing tier needs, and, for a score, the score, the
threshold and which criteria gave or withheld points.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from crmbridge.model import CriterionResult, FieldValue, Reason
from crmbridge.rules.filespec import API_NAME, TIER
from crmbridge.rules.model import Group, Rule, Tier
from crmbridge.synonyms import Synonyms, comparable
from crmbridge.yamlfile import (
    Node,
    Problems,
    check_keys,
    get_bool,
    get_count,
    get_text,
    names_in,
)

__all__ = ["Grade", "Scored", "grade", "parse_synonyms", "parse_tiers"]

_API_NAME = re.compile(API_NAME)
TIER_CRITERION = "tier"
SCORE_CRITERION = "score"


@dataclass(frozen=True)
class Scored:
    """One criterion that carries points, and whether the lead met it."""

    name: str
    points: int
    passed: bool


@dataclass(frozen=True)
class Grade:
    """The tier a lead reached (``None``: none), its score, whether it syncs, and the reasons
    it does not."""

    tier: Tier | None
    score: int | None
    qualified: bool
    reasons: tuple[Reason, ...] = ()


def grade(
    tiers: Sequence[Tier], results: Sequence[CriterionResult], scored: Sequence[Scored]
) -> Grade:
    """Grade a lead from its top-level criterion ``results`` and its ``scored`` criteria."""
    score = sum(s.points for s in scored if s.passed) if scored else None
    passed = {r.name for r in results if r.passed}
    reached = next((t for t in tiers if _reaches(t, passed, score)), None)
    if reached is not None and reached.sync:
        return Grade(reached, score, qualified=True)
    target = next((t for t in reversed(tiers) if t.sync), None)
    reasons: list[Reason] = []
    graded = f'graded "{reached.name}", which does not sync' if reached else "reaches no tier"
    missing = [name for name in target.requires if name not in passed] if target else []
    needs = f'; "{target.name}" needs {", ".join(missing)}' if target and missing else ""
    reasons.append(Reason(TIER_CRITERION, f"tier: {graded}{needs}", code="TIER"))
    if target is not None and target.min_score is not None and (score or 0) < target.min_score:
        reasons.append(_score_reason(score or 0, target, scored))
    return Grade(reached, score, qualified=False, reasons=tuple(reasons))


def _reaches(tier: Tier, passed: set[str], score: int | None) -> bool:
    if any(name not in passed for name in tier.requires):
        return False
    return tier.min_score is None or (score or 0) >= tier.min_score


def _score_reason(score: int, target: Tier, scored: Sequence[Scored]) -> Reason:
    given = ", ".join(f"{s.name} +{s.points}" for s in scored if s.passed and s.points)
    withheld = ", ".join(f"{s.name} {s.points}" for s in scored if not s.passed and s.points)
    message = (
        f'score: {score} is below {target.min_score}, the least "{target.name}" needs; '
        f"points given: {given or 'none'}; withheld: {withheld or 'none'}"
    )
    return Reason(SCORE_CRITERION, message, code="SCORE")


# -- reading the file ---------------------------------------------------------------------------
def parse_synonyms(node: Node | None, problems: Problems) -> dict[str, Synonyms]:
    """The ``synonyms:`` tables: name → {canonical value: [variants]}."""
    if node is None:
        return {}
    if not node.is_mapping or not node.value:
        problems.add(
            node,
            '"synonyms" must map table names to tables',
            "e.g. synonyms: {job_titles: {CEO: [Chief Executive Officer, Co-founder & CEO]}}",
        )
        return {}
    tables: dict[str, Synonyms] = {}
    for name, table_node in node.items():
        table = _synonym_table(str(name), table_node, problems)
        if table is not None:
            tables[str(name)] = table
    return tables


def _synonym_table(name: str, node: Node, problems: Problems) -> Synonyms | None:
    what = f'synonym table "{name}"'
    if not node.is_mapping or not node.value:
        problems.add(
            node,
            f"{what} must map each value to the ways people type it",
            "e.g. CEO: [Chief Executive Officer, Co-founder & CEO]",
        )
        return None
    table: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for canonical, variants_node in node.items():
        variants = [canonical, *variants_node.plain()] if variants_node.is_list else None
        if variants is None or not all(isinstance(v, str) and v.strip() for v in variants):
            problems.add(
                variants_node,
                f"{what}: the variants of {canonical!r} must be a list of text",
                'e.g. CEO: [Chief Executive Officer, "Co-founder & CEO"]',
            )
            continue
        kept: list[str] = []
        for variant in variants:
            key = comparable(variant)
            if owner.get(key, canonical) != canonical:
                problems.add(
                    variants_node,
                    f'{what}: "{variant}" is a synonym of both "{owner[key]}" and "{canonical}"',
                    "keep it under one value (case, punctuation and & vs and do not count)",
                )
                continue
            owner[key] = str(canonical)
            kept.append(str(variant).strip())
        table[str(canonical)] = kept[1:] if kept and kept[0] == str(canonical).strip() else kept
    return Synonyms(name, table)


def parse_tiers(
    node: Node | None, criteria: Sequence[Rule], problems: Problems
) -> tuple[Tier, ...]:
    """The ``tiers:`` list, best first, checked against the rule set's criteria."""
    if node is None:
        return ()
    if not node.is_list or not node.value:
        problems.add(
            node,
            '"tiers" must be a non-empty list, best tier first',
            "each entry starts with - name: Hot",
        )
        return ()
    top = [rule.name for rule in criteria]
    has_points = _any_points(criteria)
    tiers: list[Tier] = []
    for item in node.elements():
        tier = _tier(item, top, has_points, problems)
        if tier is None:
            continue
        if any(t.name == tier.name for t in tiers):
            problems.add(item, f'two tiers are named "{tier.name}"', "give each tier its own name")
        elif tiers and not tiers[-1].requires and tiers[-1].min_score is None:
            problems.add(
                item,
                f'tier "{tier.name}" comes after "{tiers[-1].name}", which takes every lead left',
                "move the catch-all tier (no requires, no min_score) to the end",
            )
        tiers.append(tier)
    if tiers and not any(t.sync for t in tiers):
        problems.add(node, "no tier syncs: every lead would be held back", "set sync: true on one")
    return tuple(tiers)


def _any_points(rules: Sequence[Rule]) -> bool:
    return any(
        rule.points or (isinstance(rule, Group) and _any_points(rule.criteria)) for rule in rules
    )


def _tier(item: Node, top: list[str], has_points: bool, problems: Problems) -> Tier | None:
    if not check_keys(item, problems, TIER.names, what="a tier"):
        return None
    name = get_text(item, "name", problems, required=True, what="a tier")
    what = f'tier "{name}"' if name else "a tier"
    requires = _requires(item.get("requires"), top, problems, what)
    min_score = None
    if item.get("min_score") is not None:
        min_score = get_count(item, "min_score", problems, what=what)
        if not has_points:
            problems.add(
                item.get("min_score") or item,
                f"{what}: min_score needs criteria with points",
                "give the criteria points: (e.g. points: 20), or use requires:",
            )
    stage = get_text(item, "stage", problems, what=what)
    fields = _set(item.get("set"), problems, what)
    if name is None or requires is None:
        return None
    return Tier(
        name=name,
        requires=requires,
        min_score=min_score,
        sync=get_bool(item, "sync", problems, default=True, what=what),
        stage=stage,
        set=fields,
        location=item.location,
    )


def _requires(
    node: Node | None, top: list[str], problems: Problems, what: str
) -> tuple[str, ...] | None:
    if node is None:
        return ()
    if not node.is_list or not node.value:
        problems.add(node, f'{what}: "requires" must be a list of criteria', "e.g. [budget, need]")
        return None
    names = names_in(
        node, top, problems, what=what, of="a top-level criterion", listed="top-level criteria"
    )
    return tuple(names) if names is not None else None


def _set(node: Node | None, problems: Problems, what: str) -> dict[str, FieldValue]:
    if node is None:
        return {}
    if not node.is_mapping or not node.value:
        problems.add(node, f'{what}: "set" must map Salesforce fields to values', "Rating: Hot")
        return {}
    fields: dict[str, FieldValue] = {}
    for key, child in node.items():
        value = child.plain()
        if not isinstance(key, str) or _API_NAME.fullmatch(key) is None:
            problems.add(
                node.key_node(key),
                f'{what}: "{key}" is not a Salesforce field API name',
                "use the API name from Setup > Object Manager, e.g. Rating",
            )
        elif value is None or not isinstance(value, str | int | float | bool):
            problems.add(child, f"{what}: {key} must be one value", "e.g. Rating: Hot")
        else:
            fields[key] = value
    return fields
