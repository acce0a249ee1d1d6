"""`rejects stats` and `report audit` on a seeded store: exact counts on both backends, the CSV,
and the HTML page (self-contained, charts drawn in, HubSpot values escaped)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from crmbridge.audit_report import audit_csv, audit_html
from crmbridge.model import Cursor, Outcome, Reason, RejectStage
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.review import Action, ReviewChange
from crmbridge.review_stats import audit_figures, month, quarter, reject_stats
from crmbridge.state.store import SQLStateStore
from tests.decisions import decision

STREAM = "hubspot.contacts"
NEED = Reason("need", "need: empty", code="RULE")
DUPLICATE = Reason("salesforce.DUPLICATES_DETECTED", "dup", code="DUPLICATES_DETECTED")
HOSTILE_SOURCE = "<script>alert(1)</script>"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def seeded(store_url: str) -> Iterator[StateStore]:
    """November: c1 synced (tier A, ADS); c2 rejected (budget, tier B, ADS), approved by ana on
    the 20th and synced as an exception; c3 rejected (budget and need, SEO), escalated to
    sales; c4 refused by Salesforce (duplicate, SEO). December: c5 rejected (timeline, ADS)."""
    clock = Clock()
    store = SQLStateStore(store_url, create=True, clock=clock)
    try:
        ads, seo = {"lead_source": "ADS"}, {"lead_source": "SEO"}
        store.commit_page(
            STREAM,
            [
                decision("c1", Outcome.CREATED, tier="A", **ads),
                decision("c2", Outcome.REJECTED, tier="B", **ads),
                decision(
                    "c3",
                    Outcome.REJECTED,
                    reasons=(decision("x", Outcome.REJECTED).reasons[0], NEED),
                    **seo,
                ),
                decision(
                    "c4",
                    Outcome.REJECTED,
                    qualified=True,
                    stage=RejectStage.SALESFORCE,
                    reasons=(DUPLICATE,),
                    **seo,
                ),
            ],
            Cursor(1, 1),
        )
        clock.now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
        c2 = store.reject_ids(RejectFilter(contact_id="c2"))
        c3 = store.reject_ids(RejectFilter(contact_id="c3"))
        store.change_review(c2, ReviewChange(Action.APPROVE, "ana", note="fair"))
        store.change_review(c3, ReviewChange(Action.ESCALATE, "bo", assignee="sales"))
        [due] = store.due_rejects(10)
        exception = decision(
            "c2", Outcome.CREATED, tier="B", qualified=False, exception=due.exception, **ads
        )
        store.commit_page(STREAM, [exception], None)
        clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
        timeline = Reason("timeline", "timeline: 365 is not < 180", code="RULE")
        store.commit_page(
            STREAM, [decision("c5", Outcome.REJECTED, reasons=(timeline,), **ads)], None
        )
        yield store
    finally:
        store.close()


def test_stats_count_criteria_sources_and_weeks_exactly(seeded: StateStore) -> None:
    """By criterion every reject's reasons; by source the latest decisions; by ISO week."""
    stats = reject_stats(seeded)
    assert stats.by_criterion == Counter(
        {"budget": 2, "need": 1, "timeline": 1, "salesforce.DUPLICATES_DETECTED": 1}
    )
    assert [(r.source, r.contacts, r.qualified) for r in stats.by_source] == [
        ("ADS", 3, 1),
        ("SEO", 2, 1),
    ]
    assert {w: dict(c) for w, c in stats.by_week.items()} == {
        "2026-W45": {"passed": 1, "rejected": 3},
        "2026-W47": {"passed": 1},
        "2026-W49": {"rejected": 1},
    }
    november = reject_stats(seeded, since="2026-11-01", until="2026-12-01")
    assert november.by_criterion["timeline"] == 0


def test_the_audit_report_of_a_month_counts_exactly(seeded: StateStore) -> None:
    """Passed and held back by tier, source and criterion, exceptions and who granted them,
    escalations, Salesforce errors, weeks: November only."""
    figures = audit_figures(seeded, month("2026-11"))
    assert (figures.passed, figures.held_back, figures.synced_as_exception) == (2, 2, 1)
    assert {t: dict(c) for t, c in figures.by_tier.items()} == {
        "(none)": {"held back": 1},
        "A": {"passed": 1},
        "B": {"held back": 1, "passed": 1, "exception": 1},
    }
    assert {s: dict(c) for s, c in figures.by_source.items()} == {
        "ADS": {"passed": 2, "held back": 1, "exception": 1},
        "SEO": {"held back": 1},
    }
    assert figures.held_by_criterion == Counter({"budget": 2, "need": 1})
    assert figures.exceptions_by_reviewer == Counter({"ana": 1})
    assert [(e.actor, e.note) for e in figures.exceptions_granted] == [("ana", "fair")]
    assert (figures.escalations_open_count, figures.escalated_in_period) == (1, 1)
    assert [r.assignee for r in figures.escalations_open] == ["sales"]
    assert figures.salesforce_errors == Counter({"DUPLICATES_DETECTED": 1})
    assert {w: dict(c) for w, c in figures.by_week.items()} == {
        "2026-W45": {"passed": 1, "held back": 2},
        "2026-W47": {"passed": 1},
    }
    december = audit_figures(seeded, month("2026-12"))
    assert (december.passed, december.held_back, len(december.exceptions_granted)) == (0, 1, 0)
    whole = audit_figures(seeded, quarter("2026-Q4"))
    assert (whole.passed, whole.held_back) == (2, 3)


def test_the_audit_csv_holds_every_figure(seeded: StateStore) -> None:
    """One row per figure: the totals, and a row per tier, source, criterion and reviewer."""
    rows = list(csv.reader(io.StringIO(audit_csv(audit_figures(seeded, month("2026-11"))))))
    assert rows[0] == ["section", "group", "measure", "value"]
    assert ["total", "", "passed", "2"] in rows
    assert ["total", "", "exceptions granted", "1"] in rows
    assert ["tier", "B", "exception", "1"] in rows
    assert ["criterion", "budget", "held back", "2"] in rows
    assert ["reviewer", "ana", "exceptions granted", "1"] in rows
    assert ["salesforce error", "DUPLICATES_DETECTED", "rejected", "1"] in rows


def test_the_audit_page_is_self_contained_and_escapes_values(store_url: str) -> None:
    """Four charts drawn in as SVG, nothing fetched, a hostile lead source shown as text."""
    clock = Clock()
    store = SQLStateStore(store_url, create=True, clock=clock)
    try:
        store.commit_page(
            STREAM, [decision("c1", Outcome.REJECTED, lead_source=HOSTILE_SOURCE)], Cursor(1, 1)
        )
        page = audit_html(audit_figures(store, month("2026-11")))
    finally:
        store.close()
    assert page.count("<svg") == 4
    assert HOSTILE_SOURCE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert 'href="http' not in page
    assert "src=" not in page


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "november"])
def test_a_bad_month_is_refused(bad: str) -> None:
    """Anything but YYYY-MM with a real month is a ValueError naming it."""
    with pytest.raises(ValueError, match=bad):
        month(bad)


def test_periods_cover_their_days() -> None:
    """A month and a quarter start on their first day and end before the next period."""
    assert (month("2026-12").since, month("2026-12").until) == ("2026-12-01", "2027-01-01")
    assert (quarter("2026-q4").since, quarter("2026-Q4").until) == ("2026-10-01", "2027-01-01")
    assert (quarter("2027-Q1").since, quarter("2027-Q1").until) == ("2027-01-01", "2027-04-01")
