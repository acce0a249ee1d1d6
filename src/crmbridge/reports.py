"""Text and JSON renderings of summaries and reject records, as people read them.

Text output escapes every control character of outside text (``text.visible``): a HubSpot
value or a Salesforce message must not clear the screen or break a table. JSON output is exact.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from crmbridge.model import Decision, PassSummary
from crmbridge.ports import DecisionRecord, RejectRecord, StoreIdentity
from crmbridge.review import AuditEntry, Status
from crmbridge.text import visible


def ms_iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC to the second (``2026-11-03T09:00:00Z``)."""
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def summary_text(summary: PassSummary, *, elapsed_s: float | None = None) -> str:
    """The end-of-pass summary: pulled / created / updated / rejected by reason / failed."""
    verb = "would be " if summary.dry_run else "synced: "
    rows = [
        ("pulled from HubSpot", summary.pulled),
        (f"{verb}created", summary.created),
        (f"{verb}updated", summary.updated),
        ("unchanged (not pushed)", summary.unchanged),
        ("would be rejected" if summary.dry_run else "rejected", summary.rejected),
    ]
    title = "Dry run: nothing pushed, nothing written" if summary.dry_run else "Pass summary"
    lines = [title + (f" ({elapsed_s:.1f} s)" if elapsed_s is not None else "")]
    lines += [f"  {label:<26}{value:>7}" for label, value in rows]
    for reason, count in sorted(summary.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"    {visible(reason):<24}{count:>7}")
    if summary.flagged:
        lines.append(f"  {'synced with flags':<26}{summary.flagged:>7}  (`crmbridge flagged`)")
    if summary.rejudged:
        lines.append(
            f"  {'judged again (reviewed)':<26}{summary.rejudged:>7}"
            f"  ({summary.exceptions} synced as exceptions)"
        )
    lines.append(f"  {'failed (parked for retry)':<26}{summary.parked:>7}")
    if summary.skipped:
        lines.append(f"  {'skipped (archived)':<26}{summary.skipped:>7}")
    lines.append(
        f"  API calls: HubSpot {summary.hubspot_calls}, Salesforce {summary.salesforce_calls}"
    )
    if summary.rejected_by_reason:
        lines.append("  (a rejected lead counts once; each failed criterion counts under its name)")
    if summary.interrupted:
        lines.append("  INTERRUPTED: stop requested; the pass ended after a committed page")
    if summary.stopped_early:
        lines.append(f"  STOPPED EARLY: {visible(summary.stopped_early)}")
    if summary.blocked:
        lines.append("  a person must fix this; `crmbridge run` keeps trying, with a backoff")
    return "\n".join(lines)


def cell(text: str, width: int) -> str:
    """``text`` escaped (a table cell never holds a control character), cut to ``width``."""
    text = visible(text)
    return text if len(text) <= width else text[: width - 1] + "…"


_Listed = RejectRecord | DecisionRecord
#: A listing's column: its title, its width, and what it shows of a stored decision.
_Column = tuple[str, int, Callable[[_Listed], str]]


def _lead_columns(when: str) -> list[_Column]:
    """The columns every listing starts with: the contact, its e-mail, and when it was decided."""
    return [
        ("CONTACT", 10, lambda r: r.decision.contact_id),
        ("EMAIL", 30, lambda r: r.decision.email or "-"),
        (when, 20, lambda r: r.decided_at[:19].replace("T", " ")),
    ]


def _listing(
    records: Sequence[_Listed], columns: Sequence[_Column], *, total: int, offset: int
) -> str:
    """One line per stored decision: its id, then ``columns`` (the last one not padded), every
    cell escaped and cut to its width; then where the page sits in the whole."""
    *padded, (last_title, last_width, last_text) = columns
    lines = [
        f"{'ID':>6}  " + "".join(f"{title:<{width}} " for title, width, _ in padded) + last_title
    ]
    lines += [
        f"{record.id:>6}  "
        + "".join(f"{cell(text(record), width):<{width}} " for _, width, text in padded)
        + cell(last_text(record), last_width)
        for record in records
    ]
    lines.append(f"\n{offset + 1}-{offset + len(records)} of {total}.")
    return "\n".join(lines)


def age(since: str | None, now: datetime | None = None) -> str:
    """How long ago ``since`` (an ISO time) was, in the largest whole unit: 3d, 5h, 12m."""
    if not since:
        return "-"
    try:
        then = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = max(((now or datetime.now(UTC)) - then).total_seconds(), 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "now"


def review_status(record: RejectRecord, now: datetime | None = None) -> str:
    """A reject's status as the queue shows it: an escalation with its assignee and age."""
    if record.status == Status.ESCALATED:
        return f"escalated→{record.assignee or '?'} {age(record.status_changed_at, now)}"
    if record.requeued:
        return f"{record.status} (replay)"
    return record.status


def rejects_table(
    records: list[RejectRecord], *, total: int, offset: int, now: datetime | None = None
) -> str:
    """`rejects list`: one line per reject, cells escaped and cut to their column; the status
    shows to whom and since when a reject is escalated."""
    if not records:
        return "No rejects match."
    columns: list[_Column] = [
        *_lead_columns("WHEN (UTC)"),
        ("STATUS", 28, lambda r: review_status(r, now) if isinstance(r, RejectRecord) else ""),
        ("RULES", 20, lambda r: r.decision.rule_set_version),
        ("REASONS", 100, lambda r: "; ".join(x.message for x in r.decision.reasons)),
    ]
    table = _listing(records, columns, total=total, offset=offset)
    return table + " `crmbridge rejects show ID` for details."


def reject_text(record: RejectRecord, trail: Sequence[AuditEntry] = ()) -> str:
    """`rejects show`: one reject in full with its audit trail, every outside text escaped."""
    d = record.decision
    lines = [
        f"Reject {record.id}",
        f"  HubSpot contact   {d.contact_id}",
        f"  e-mail            {d.email or '-'}",
        f"  rejected at       {record.decided_at}",
        f"  contact version   lastmodifieddate {ms_iso(d.modified_at_ms)}",
        f"  stage             {d.stage.value if d.stage else '-'}",
        f"  rule-set version  {d.rule_set_version}",
        "  status            "
        + (
            f"resolved ({record.resolution}) at {record.resolved_at}"
            if record.resolved_at
            else f"{review_status(record)} (since {record.status_changed_at or '-'})"
        ),
        f"  lead source       {d.lead_source or '-'}",
        "  reasons:",
    ]
    lines += [f"    - {r.message}" + (f"  [{r.code}]" if r.code else "") for r in d.reasons]
    lines += _grade_lines(d)
    if d.criteria:
        lines.append("  criteria:")
        for criterion in d.criteria:
            # A failed criterion's reason already starts with its name.
            text = criterion.name if criterion.passed else (criterion.reason or criterion.name)
            lines.append(f"    {'pass' if criterion.passed else 'FAIL'}  {text}")
    lines.append("  inputs (HubSpot properties read):")
    for key, value in sorted(d.inputs.items()):
        lines.append(f"    {key}: " + ("(empty)" if value is None else f'"{value}"'))
    if trail:
        lines.append("  review:")
        lines += [f"    {audit_line(entry)}" for entry in trail]
    return "\n".join(visible(line) for line in lines)


def audit_line(entry: AuditEntry) -> str:
    """One audit entry as a line (raw: the caller escapes it)."""
    to = f"{entry.to_status}→{entry.assignee}" if entry.assignee else entry.to_status
    note = f": {entry.note}" if entry.note else ""
    return f"{entry.at[:19].replace('T', ' ')}  {entry.actor}  {entry.from_status} → {to}{note}"


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "from": entry.from_status,
        "to": entry.to_status,
        "assignee": entry.assignee,
        "note": entry.note,
    }


#: The columns of a CSV export of rejects, in order.
CSV_COLUMNS = (
    "id",
    "status",
    "assignee",
    "status_changed_at",
    "contact_id",
    "email",
    "rejected_at",
    "stage",
    "rule_set_version",
    "tier",
    "score",
    "lead_source",
    "criteria",
    "codes",
    "reasons",
)


def rejects_csv(records: Sequence[RejectRecord]) -> str:
    """Rejects as CSV with a header row: values exact (no escaping beyond CSV's quoting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(csv_row(record))
    return out.getvalue()


def csv_row(record: RejectRecord) -> list[object]:
    d = record.decision
    return [
        record.id,
        record.status,
        record.assignee or "",
        record.status_changed_at or "",
        d.contact_id,
        d.email or "",
        record.decided_at,
        d.stage.value if d.stage else "",
        d.rule_set_version,
        d.tier or "",
        "" if d.score is None else d.score,
        d.lead_source or "",
        "; ".join(r.criterion for r in d.reasons),
        "; ".join(r.code or "" for r in d.reasons),
        "; ".join(r.message for r in d.reasons),
    ]


def reject_json(record: RejectRecord) -> dict[str, Any]:
    """One reject as JSON-ready data, every value exact (the encoder escapes controls)."""
    d = record.decision
    return {
        "id": record.id,
        "contact_id": d.contact_id,
        "email": d.email,
        "rejected_at": record.decided_at,
        "modified_at": ms_iso(d.modified_at_ms),
        "stage": d.stage.value if d.stage else None,
        "rule_set_version": d.rule_set_version,
        "reasons": [r.to_json() for r in d.reasons],
        "criteria": [c.to_json() for c in d.criteria],
        "inputs": dict(d.inputs),
        "resolved_at": record.resolved_at,
        "resolution": record.resolution,
        "status": record.status,
        "status_changed_at": record.status_changed_at,
        "assignee": record.assignee,
        "requeued": record.requeued,
        "lead_source": d.lead_source,
        "exception": dict(d.exception) if d.exception else None,
        **_grade_json(d),
    }


def _grade_lines(d: Decision) -> list[str]:
    """Tier, score, stage move and flags of a decision, when it has them (raw: the caller
    escapes each line)."""
    lines = []
    if d.tier is not None or d.score is not None:
        score = f" (score {d.score})" if d.score is not None else ""
        lines.append(f"  tier              {d.tier or '-'}{score}")
    if d.transition is not None:
        lines.append(f"  stage             {d.transition.text()}")
    if d.flags:
        lines.append("  flags (synced anyway, for a reviewer to fix):")
        lines += [f"    - {f.message}  [{f.code}, {f.action.value}]" for f in d.flags]
    return lines


def _grade_json(d: Decision) -> dict[str, Any]:
    return {
        "tier": d.tier,
        "score": d.score,
        "lead_stage": d.lead_stage,
        "transition": d.transition.to_json() if d.transition else None,
        "flags": [f.to_json() for f in d.flags],
    }


def flagged_table(records: list[DecisionRecord], *, total: int, offset: int) -> str:
    """`flagged`: one line per lead synced with flags (each flag's problem and the choice
    made), cells escaped and cut to their column."""
    if not records:
        return "No lead is synced with flags."
    flags: _Column = (
        "FLAGS",
        120,
        lambda r: "; ".join(f"{f.message} [{f.action.value}]" for f in r.decision.flags),
    )
    return _listing(records, [*_lead_columns("SYNCED (UTC)"), flags], total=total, offset=offset)


def flagged_json(record: DecisionRecord) -> dict[str, Any]:
    d = record.decision
    return {
        "id": record.id,
        "contact_id": d.contact_id,
        "email": d.email,
        "decided_at": record.decided_at,
        "outcome": d.outcome.value,
        "salesforce_id": d.salesforce_id,
        **_grade_json(d),
    }


def identity_text(identity: StoreIdentity) -> str:
    """Which state store this is: where it is, its id, when and where it was made (escaped:
    a path or URL may hold any character)."""
    lines = [
        f"state store       {identity.url}",
        f"store id          {identity.store_id} (pipeline {identity.pipeline})",
        f"created           {identity.created_at} at {identity.created_url}",
    ]
    if identity.moved:
        lines.append("                  (made elsewhere: moved, copied or restored since)")
    return "\n".join(visible(line) for line in lines)
