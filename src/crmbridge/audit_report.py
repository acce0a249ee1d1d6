"""`report audit`: a period's figures (:func:`crmbridge.review_stats.audit_figures`) as CSV, and
as one self-contained HTML page whose charts are drawn here with matplotlib as inline SVG, so
the page needs no network and no script to show them.

Every value that came from outside (lead sources, tiers, criteria, reviewers' names and notes,
assignees) is HTML-escaped in the page; the CSV keeps values exact.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crmbridge.reports import age
from crmbridge.review_stats import AuditFigures
from crmbridge.text import visible

__all__ = ["audit_csv", "audit_html", "bar_chart_svg"]

#: Bars a chart shows at most (the rest are summed into "other").
CHART_BARS = 12
_COLOURS = {"passed": "#2e7d32", "held back": "#c62828", "exception": "#f9a825"}


def audit_csv(figures: AuditFigures) -> str:
    """The figures as CSV rows ``section,group,measure,value`` (one header row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "group", "measure", "value"])
    p = figures.period
    writer.writerows(
        [
            ["period", p.name, "from", p.since],
            ["period", p.name, "until (excluded)", p.until],
            ["total", "", "passed", figures.passed],
            ["total", "", "held back", figures.held_back],
            ["total", "", "synced as exception", figures.synced_as_exception],
            ["total", "", "exceptions granted", len(figures.exceptions_granted)],
            ["total", "", "escalated in period", figures.escalated_in_period],
            ["total", "", "escalations open", figures.escalations_open_count],
            ["total", "", "parked", figures.parked],
        ]
    )
    for section, groups in (("tier", figures.by_tier), ("source", figures.by_source)):
        for group, counts in groups.items():
            writer.writerows([section, group, kind, n] for kind, n in sorted(counts.items()))
    writer.writerows(
        ["criterion", c, "held back", n] for c, n in figures.held_by_criterion.most_common()
    )
    writer.writerows(
        ["reviewer", who, "exceptions granted", n]
        for who, n in figures.exceptions_by_reviewer.most_common()
    )
    writer.writerows(
        ["salesforce error", code, "rejected", n]
        for code, n in figures.salesforce_errors.most_common()
    )
    for week, counts in figures.by_week.items():
        writer.writerows(["week", week, kind, n] for kind, n in sorted(counts.items()))
    for entry in figures.exceptions_granted:
        writer.writerow(
            ["exception", str(entry.reject_id), f"approved by {entry.actor} at {entry.at}",
             entry.note or ""]
        )  # fmt: skip
    for record in figures.escalations_open:
        writer.writerow(
            ["escalation open", str(record.id), f"to {record.assignee or ''} since "
             f"{record.status_changed_at or ''}", record.decision.contact_id]
        )  # fmt: skip
    return out.getvalue()


def bar_chart_svg(title: str, groups: Mapping[str, Mapping[str, int]], kinds: Sequence[str]) -> str:
    """A horizontal stacked bar chart as an inline ``<svg>`` element (no XML declaration, no
    external reference). Labels are drawn as text, so matplotlib escapes them for SVG."""
    import matplotlib  # noqa: PLC0415 - loaded only when a page is drawn

    matplotlib.use("Agg")  # no display on a server
    shown = _top(groups)
    labels = [visible(label) for label in shown]
    height = 0.9 + 0.32 * max(len(labels), 1)
    with matplotlib.rc_context(_RC):
        return _draw(title, labels, shown, kinds, height)


#: Labels are data, never mathtext ("$5k" must not be parsed); the same SVG for the same data.
_RC: dict[Any, Any] = {
    "text.parse_math": False,
    "svg.hashsalt": "crmbridge",
    "svg.fonttype": "path",
}


def _draw(
    title: str,
    labels: list[str],
    shown: Mapping[str, Counter[str]],
    kinds: Sequence[str],
    height: float,
) -> str:
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(7.5, height))
    axes = figure.add_subplot()
    positions = list(range(len(labels)))  # by position: two labels may read the same
    left = [0] * len(labels)
    for kind in kinds:
        values = [counts.get(kind, 0) for counts in shown.values()]
        if any(values):
            colour = _COLOURS.get(kind, "#607d8b")
            axes.barh(positions, values, left=left, color=colour, label=kind)
            left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_title(title, loc="left", fontsize=11)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    if labels:
        axes.legend(fontsize=8, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    # matplotlib escapes the text it quotes in comments; dropping them keeps data out anyway.
    return re.sub(r"<!--.*?-->", "", svg[svg.index("<svg") :], flags=re.DOTALL)


def _top(groups: Mapping[str, Mapping[str, int]]) -> dict[str, Counter[str]]:
    """The largest ``CHART_BARS`` groups, the rest summed as "other"."""
    ordered = sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))
    shown = {name: Counter(counts) for name, counts in ordered[:CHART_BARS]}
    rest: Counter[str] = Counter()
    for _, counts in ordered[CHART_BARS:]:
        rest.update(counts)
    if rest:
        shown["other"] = rest
    return shown


def audit_html(figures: AuditFigures, *, now: datetime | None = None) -> str:
    """The whole report as one HTML page: totals, charts, tables. Self-contained."""
    return "".join(
        [
            _HEAD.format(title=html.escape(f"crmbridge audit {figures.period.name}")),
            audit_body(figures, now=now),
            "</body></html>\n",
        ]
    )


def audit_body(figures: AuditFigures, *, now: datetime | None = None) -> str:
    """The report's content (charts and tables), for this page and for the console's."""
    e = html.escape
    p = figures.period
    kinds = ("passed", "exception", "held back")
    criteria = {c: {"held back": n} for c, n in figures.held_by_criterion.items()}
    weeks = {w: dict(c) for w, c in figures.by_week.items()}
    parts = [
        f"<h1>Audit {e(p.name)}</h1><p class=muted>{e(p.since)} to {e(p.until)} (excluded), "
        f"UTC; made {e(_now(now))}</p>",
        "<div class=totals>",
        _total("passed", figures.passed),
        _total("held back", figures.held_back),
        _total("synced as exception", figures.synced_as_exception),
        _total("exceptions granted", len(figures.exceptions_granted)),
        _total("escalations open", figures.escalations_open_count),
        _total("Salesforce errors", sum(figures.salesforce_errors.values()) + figures.parked),
        "</div>",
        "<div class=charts>",
        bar_chart_svg("By tier", _without_exception(figures.by_tier), kinds[::2]),
        bar_chart_svg("By lead source", _without_exception(figures.by_source), kinds[::2]),
        bar_chart_svg("Held back by criterion", criteria, ("held back",)),
        bar_chart_svg("By week", weeks, kinds[::2]),
        "</div>",
        "<h2>By tier</h2>",
        _table(["tier", *kinds], _rows(figures.by_tier, kinds)),
        "<h2>By lead source</h2>",
        _table(["lead source", *kinds], _rows(figures.by_source, kinds)),
        "<h2>Held back by criterion</h2>",
        _table(["criterion", "held back"], figures.held_by_criterion.most_common()),
        "<h2>Exceptions granted</h2>",
        _table(["reviewer", "exceptions"], figures.exceptions_by_reviewer.most_common()),
        _table(
            ["reject", "approved by", "at", "note"],
            [[x.reject_id, x.actor, x.at[:19], x.note or ""] for x in figures.exceptions_granted],
        ),
        "<h2>Escalations open</h2>",
        f"<p>{figures.escalations_open_count} open now; {figures.escalated_in_period} "
        "escalations made in the period.</p>",
        _table(
            ["reject", "contact", "escalated to", "age"],
            [
                [r.id, r.decision.contact_id, r.assignee or "", age(r.status_changed_at, now)]
                for r in figures.escalations_open
            ],
        ),
        "<h2>Salesforce errors</h2>",
        f"<p>{figures.parked} decisions parked (transient failures, retried).</p>",
        _table(["error code", "rejected"], figures.salesforce_errors.most_common()),
    ]  # fmt: skip
    return "\n".join(parts)


def _rows(groups: Mapping[str, Counter[str]], kinds: Sequence[str]) -> list[list[object]]:
    return [[name, *(counts.get(k, 0) for k in kinds)] for name, counts in groups.items()]


def _without_exception(groups: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
    """Passed minus the exceptions among them, so a stacked bar adds up."""
    out = {}
    for name, counts in groups.items():
        row = dict(counts)
        row["passed"] = row.get("passed", 0) - row.get("exception", 0)
        out[name] = row
    return out


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")


def _total(label: str, value: int) -> str:
    return f"<div class=total><b>{value}</b><span>{html.escape(label)}</span></div>"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p class=muted>None.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_HEAD = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<meta name=viewport content="width=device-width, initial-scale=1">
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}}
h1{{margin-bottom:.2rem}} h2{{margin-top:2rem;border-bottom:1px solid #ddd}}
.muted{{color:#666}} .totals{{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}}
.total{{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}}
.total b{{display:block;font-size:1.6rem}} .total span{{color:#555}}
.charts{{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}}
.charts svg{{width:100%;height:auto}}
table{{border-collapse:collapse;margin:.5rem 0}}
td,th{{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}}
th{{background:#f4f4f4}}
</style></head><body>
"""
