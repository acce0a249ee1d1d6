"""Text and JSON renderings of `rejects replay` and `rejects stats`, as people read them.

Outside text (criteria, lead sources, e-mails, reasons) is escaped in text output
(``text.visible``); JSON keeps it exact.
"""

from __future__ import annotations

from typing import Any

from crmbridge.reject_replay import ReplayResult
from crmbridge.reports import cell
from crmbridge.review_stats import RejectStats
from crmbridge.text import visible

__all__ = ["replay_json", "replay_text", "stats_json", "stats_text"]


def replay_text(result: ReplayResult, *, limit: int, applied: bool) -> str:
    """What a replay found, and (``applied``) what it marked."""
    lines = [
        f"Open rejects judged again under {result.rule_set} {result.version}: {result.judged}",
        f"  would now pass: {len(result.passing)}",
    ]
    for criterion, count in result.by_criterion.most_common():
        lines.append(f"    held back before by {criterion:<22}{count:>7}")
    for prop, count in result.not_replayable.most_common():
        lines.append(f"  not judged: {count} rejects never stored {prop!r} (the rules read it)")
    if result.passing:
        lines.append("")
        lines.append(f"{'ID':>6}  {'CONTACT':<10} {'EMAIL':<30} HELD BACK BEFORE BY")
        for record in result.passing[:limit]:
            d = record.decision
            criteria = ", ".join(sorted({r.criterion for r in d.reasons}))
            lines.append(
                f"{record.id:>6}  {cell(d.contact_id, 10):<10} {cell(d.email or '-', 30):<30} "
                f"{cell(criteria, 60)}"
            )
        if len(result.passing) > limit:
            lines.append(f"  … and {len(result.passing) - limit} more (--limit, --format json)")
    if applied:
        marked = sum(1 for r in result.applied if r.done)
        lines.append("")
        lines.append(f"Marked {marked} for the next pass (`crmbridge sync --once` syncs them).")
    elif result.passing:
        lines.append("")
        lines.append(
            "Nothing changed. `crmbridge rejects replay --apply` marks them for the next pass."
        )
    return "\n".join(visible(line) for line in lines)


def replay_json(result: ReplayResult) -> dict[str, Any]:
    return {
        "rule_set": result.rule_set,
        "version": result.version,
        "judged": result.judged,
        "would_pass": [r.id for r in result.passing],
        "by_criterion": dict(result.by_criterion),
        "not_replayable": dict(result.not_replayable),
        "marked": [r.reject_id for r in result.applied if r.done],
    }


def stats_text(stats: RejectStats) -> str:
    """Rejects by criterion, lead sources' quality, decisions by week."""
    lines = ["Rejects by criterion (a reject counts under each criterion it failed)"]
    if not stats.by_criterion:
        lines.append("  none")
    for criterion, count in stats.by_criterion.most_common():
        lines.append(f"  {criterion:<32}{count:>8}")
    lines += ["", "Lead sources (each contact by its latest decision)"]
    lines.append(f"  {'SOURCE':<32}{'LEADS':>8}{'QUALIFY':>9}{'SHARE':>8}")
    for row in stats.by_source:
        lines.append(
            f"  {cell(row.source, 32):<32}{row.contacts:>8}{row.qualified:>9}{row.share:>8.0%}"
        )
    lines += ["", "By week (decisions)", f"  {'WEEK':<12}{'PASSED':>8}{'REJECTED':>10}"]
    for week, counts in stats.by_week.items():
        lines.append(f"  {week:<12}{counts['passed']:>8}{counts['rejected']:>10}")
    return "\n".join(visible(line) for line in lines)


def stats_json(stats: RejectStats) -> dict[str, Any]:
    return {
        "since": stats.since,
        "until": stats.until,
        "by_criterion": dict(stats.by_criterion.most_common()),
        "by_source": [
            {
                "lead_source": r.source,
                "leads": r.contacts,
                "qualified": r.qualified,
                "share": round(r.share, 4),
            }
            for r in stats.by_source
        ],
        "by_week": {week: dict(counts) for week, counts in stats.by_week.items()},
    }
