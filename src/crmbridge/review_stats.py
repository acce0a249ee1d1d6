"""Counts reviewers and auditors ask for, from the state store alone: `rejects stats` (by
criterion, by lead source, by week) and the figures of `report audit` (a month or a quarter).

What is counted: a decision is *passed* when it created or updated a Lead, *held back* when
crmbridge rejected it (stage qualification or mapping), a *Salesforce error* when Salesforce
refused it or it was parked. A lead judged twice in a period counts twice (each decision is an
event); an identical re-judgement is never stored, so it never counts.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from crmbridge.ports import DecisionCount, RejectFilter, RejectRecord, StateStore
from crmbridge.review import Action, AuditEntry, Status

__all__ = [
    "NONE",
    "AuditFigures",
    "Period",
    "RejectStats",
    "audit_figures",
    "month",
    "quarter",
    "reject_stats",
]

#: How a missing tier or lead source is shown.
NONE = "(none)"
PASSED = frozenset({"created", "updated"})
HELD_STAGES = frozenset({"qualification", "mapping"})
#: Escalations an audit report lists at most (the count is always complete).
ESCALATIONS_LISTED = 500


@dataclass(frozen=True)
class Period:
    """From ``since`` (a day, included) to ``until`` (a day, excluded), with its name."""

    name: str
    since: str
    until: str


def month(text: str) -> Period:
    """``2026-11`` → November 2026. Raises ValueError for anything else."""
    if re.fullmatch(r"\d{4}-\d{2}", text) is None:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)")
    year, number = int(text[:4]), int(text[5:])
    if not 1 <= number <= 12:
        raise ValueError(f"{text!r}: there is no month {number}")
    after = date(year + number // 12, number % 12 + 1, 1)
    return Period(text, f"{text}-01", after.isoformat())


def quarter(text: str) -> Period:
    """``2026-Q4`` → October to December 2026. Raises ValueError for anything else."""
    found = re.fullmatch(r"(\d{4})-Q([1-4])", text.upper())
    if found is None:
        raise ValueError(f"{text!r} is not a quarter (YYYY-Q1 … YYYY-Q4)")
    year, number = int(found[1]), int(found[2])
    first = date(year, 3 * number - 2, 1)
    after = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return Period(text.upper(), first.isoformat(), after.isoformat())


def iso_week(day: str) -> str:
    """``2026-11-30`` → ``2026-W49``."""
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class SourceRow:
    """One lead source: contacts judged (by their latest decision), how many qualify."""

    source: str
    contacts: int
    qualified: int

    @property
    def share(self) -> float:
        return self.qualified / self.contacts if self.contacts else 0.0


@dataclass
class RejectStats:
    """`rejects stats`: rejects by criterion and week in a period; sources over all time."""

    since: str
    until: str
    by_criterion: Counter[str] = field(default_factory=Counter)
    by_source: list[SourceRow] = field(default_factory=list)
    #: ISO week → {"passed" | "rejected": decisions}.
    by_week: dict[str, Counter[str]] = field(default_factory=dict)


def reject_stats(store: StateStore, *, since: str = "0000", until: str = "9999") -> RejectStats:
    """The statistics of decisions made from ``since`` to before ``until`` (days or times)."""
    stats = RejectStats(since, until)
    for row in store.decision_counts(since, until, by_reason=True):
        if row.outcome == "rejected" and row.criterion is not None:
            stats.by_criterion[row.criterion] += row.count
    weeks: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for row in store.decision_counts(since, until):
        if row.outcome in PASSED:
            weeks[iso_week(row.day)]["passed"] += row.count
        elif row.outcome == "rejected":
            weeks[iso_week(row.day)]["rejected"] += row.count
    stats.by_week = dict(sorted(weeks.items()))
    rows = [
        SourceRow(q.lead_source or NONE, q.contacts, q.qualified) for q in store.source_quality()
    ]
    stats.by_source = sorted(rows, key=lambda r: (-r.contacts, r.source))
    return stats


@dataclass
class AuditFigures:
    """`report audit`: what passed and what was held back in a period, and why."""

    period: Period
    #: Group (tier, criterion, source) → value → {"passed" | "held back" | "exception": n}.
    passed: int = 0
    held_back: int = 0
    synced_as_exception: int = 0
    by_tier: dict[str, Counter[str]] = field(default_factory=dict)
    by_source: dict[str, Counter[str]] = field(default_factory=dict)
    held_by_criterion: Counter[str] = field(default_factory=Counter)
    exceptions_granted: list[AuditEntry] = field(default_factory=list)
    exceptions_by_reviewer: Counter[str] = field(default_factory=Counter)
    escalations_open: list[RejectRecord] = field(default_factory=list)
    escalations_open_count: int = 0
    escalated_in_period: int = 0
    salesforce_errors: Counter[str] = field(default_factory=Counter)
    parked: int = 0
    #: ISO week → {"passed" | "held back": n}.
    by_week: dict[str, Counter[str]] = field(default_factory=dict)


def audit_figures(store: StateStore, period: Period) -> AuditFigures:
    """Every figure of the audit report for ``period``, from the store."""
    figures = AuditFigures(period)
    by_tier: defaultdict[str, Counter[str]] = defaultdict(Counter)
    by_source: defaultdict[str, Counter[str]] = defaultdict(Counter)
    weeks: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for row in store.decision_counts(period.since, period.until):
        kind = _kind(row)
        if kind is None:
            continue
        if kind == "salesforce error":
            figures.parked += row.count if row.outcome == "parked" else 0
            continue
        if kind == "passed":
            figures.passed += row.count
            if row.exception:
                figures.synced_as_exception += row.count
                by_tier[row.tier or NONE]["exception"] += row.count
                by_source[row.lead_source or NONE]["exception"] += row.count
        else:
            figures.held_back += row.count
        by_tier[row.tier or NONE][kind] += row.count
        by_source[row.lead_source or NONE][kind] += row.count
        weeks[iso_week(row.day)][kind] += row.count
    for row in store.decision_counts(period.since, period.until, by_reason=True):
        if _kind(row) == "held back" and row.criterion is not None:
            figures.held_by_criterion[row.criterion] += row.count
        elif row.stage == "salesforce" and row.outcome == "rejected":
            figures.salesforce_errors[row.code or row.criterion or "?"] += row.count
    figures.by_tier = dict(sorted(by_tier.items()))
    figures.by_source = dict(sorted(by_source.items(), key=lambda kv: -sum(kv[1].values())))
    figures.by_week = dict(sorted(weeks.items()))
    for entry in store.audit_entries(period.since, period.until):
        if entry.action == Action.APPROVE:
            figures.exceptions_granted.append(entry)
            figures.exceptions_by_reviewer[entry.actor] += 1
        elif entry.action == Action.ESCALATE:
            figures.escalated_in_period += 1
    escalated = RejectFilter(statuses=(Status.ESCALATED.value,), limit=ESCALATIONS_LISTED)
    figures.escalations_open = store.rejects(escalated)
    figures.escalations_open_count = store.count_rejects(escalated)
    return figures


def _kind(row: DecisionCount) -> str | None:
    if row.outcome in PASSED:
        return "passed"
    if row.outcome == "rejected":
        return "held back" if row.stage in HELD_STAGES else "salesforce error"
    if row.outcome == "parked":
        return "salesforce error"
    return None


def day_after(day: str) -> str:
    """``2026-11-30`` → ``2026-12-01`` (an inclusive last day as an exclusive bound)."""
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
