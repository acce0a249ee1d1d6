"""The what-if replay as people read it (a table) and as tools read it (JSON)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from crmbridge.model import Decision
from crmbridge.reports import cell
from crmbridge.text import visible
from crmbridge.whatif import NEWLY_QUALIFIED, NEWLY_REJECTED, Flip, WhatIf

__all__ = ["whatif_json", "whatif_text"]


def _breakdown(title: str, rows: Mapping[str, Counter[str]], *, with_replayed: bool) -> list[str]:
    flipped = {k: v for k, v in rows.items() if v[NEWLY_QUALIFIED] or v[NEWLY_REJECTED]}
    if not flipped:
        return []
    head = f"  {title:<38}{'newly qualified':>16}{'newly rejected':>16}"
    lines = [head + (f"{'replayed':>10}" if with_replayed else "")]
    ordered = sorted(
        flipped.items(), key=lambda kv: (-(kv[1][NEWLY_QUALIFIED] + kv[1][NEWLY_REJECTED]), kv[0])
    )
    for name, counts in ordered:
        line = f"    {cell(name, 36):<36}{counts[NEWLY_QUALIFIED]:>16}{counts[NEWLY_REJECTED]:>16}"
        lines.append(line + (f"{counts['replayed']:>10}" if with_replayed else ""))
    return lines


def whatif_text(result: WhatIf, *, limit: int = 50) -> str:
    """The replay's counts, breakdowns and up to ``limit`` flipped contacts, as a table."""
    lines = [
        f'What-if: rule set "{visible(result.rule_set)}" version {visible(result.version)}, '
        "replayed over the latest stored decision of every contact (no API call, nothing written)",
        f"  stored decisions read        {result.stored:>8}",
        f"  replayed                     {result.replayed:>8}",
    ]
    if result.not_replayable:
        lines.append(f"  not replayable               {result.stored - result.replayed:>8}")
        for prop, count in sorted(result.not_replayable.items(), key=lambda kv: (-kv[1], kv[0])):
            readers = ", ".join(result.readers.get(prop, [])) or "the proposal"
            lines.append(
                f'    {count} never read HubSpot property "{visible(prop)}" (read by '
                f"{visible(readers)}); `crmbridge sync --dry-run` judges them live"
            )
    lines += [
        f"  same verdict                 {result.unchanged:>8}",
        f"  newly qualified              {result.newly_qualified:>8}",
        f"  newly rejected               {result.newly_rejected:>8}",
    ]
    if result.flips:
        lines.append("")
        lines += _breakdown(
            "by criterion (failing before / now)", result.by_criterion, with_replayed=False
        )
        lines += _breakdown(
            f"by lead source ({result.lead_source_property})",
            result.by_lead_source,
            with_replayed=True,
        )
        lines += _breakdown("by stage", result.by_stage, with_replayed=True)
        lines.append("")
        lines.append(f"  {'CONTACT':<12}{'EMAIL':<28}{'FLIP':<17}REASONS (before → now)")
        for flip in result.flips[: max(limit, 0)]:
            d = flip.new
            before = _reasons(flip.old) or "passed"
            now = _reasons(flip.new) or "passes"
            lines.append(
                f"  {cell(d.contact_id, 11):<12}{cell(d.email or '-', 27):<28}"
                f"{flip.direction:<17}{cell(before, 60)} → {cell(now, 60)}"
            )
        if len(result.flips) > limit:
            lines.append(
                f"  … {len(result.flips) - limit} more (--limit, or --format json for all)"
            )
    if result.describe_fetched_at:
        lines.append(
            f"\n  (mapped with the Salesforce describe a pass kept at {result.describe_fetched_at})"
        )
    return "\n".join(lines)


def _reasons(decision: Decision) -> str:
    return "; ".join(r.message for r in decision.reasons)


def _side(decision: Decision) -> dict[str, Any]:
    return {
        "outcome": decision.outcome.value,
        "rule_set_version": decision.rule_set_version,
        "tier": decision.tier,
        "score": decision.score,
        "reasons": [r.to_json() for r in decision.reasons],
    }


def _flip_json(flip: Flip) -> dict[str, Any]:
    return {
        "contact_id": flip.new.contact_id,
        "email": flip.new.email,
        "flip": flip.direction,
        "lead_source": flip.lead_source,
        "stage": flip.stage,
        "old": _side(flip.old),
        "new": _side(flip.new),
    }


def whatif_json(result: WhatIf) -> dict[str, Any]:
    """Every count and every flipped contact, each with its old and new reasons."""
    return {
        "rule_set": result.rule_set,
        "version": result.version,
        "stored": result.stored,
        "replayed": result.replayed,
        "not_replayable": {
            prop: {"decisions": count, "read_by": result.readers.get(prop, [])}
            for prop, count in sorted(result.not_replayable.items())
        },
        "same_verdict": result.unchanged,
        "newly_qualified": result.newly_qualified,
        "newly_rejected": result.newly_rejected,
        "by_criterion": _counts(result.by_criterion),
        "lead_source_property": result.lead_source_property,
        "by_lead_source": _counts(result.by_lead_source),
        "by_stage": _counts(result.by_stage),
        "describe_fetched_at": result.describe_fetched_at,
        "flips": [_flip_json(flip) for flip in result.flips],
    }


def _counts(rows: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
    keys = ("replayed", NEWLY_QUALIFIED, NEWLY_REJECTED)
    return {
        name: {key: counts[key] for key in keys if key in counts or key != "replayed"}
        for name, counts in sorted(rows.items())
    }
