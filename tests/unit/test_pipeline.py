"""The pass logic with fake source and sink: batching, isolation, parking, stopping."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crmbridge import reports
from crmbridge.bootstrap import load_config
from crmbridge.daemon import EXIT_CRASHED, EXIT_FATAL, EXIT_OK, EXIT_STOPPED_EARLY, run_loop
from crmbridge.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    ConfigError,
    FatalApiError,
    RetryableApiError,
)
from crmbridge.judgement import INTERNAL_MESSAGE_MAX_CHARS
from crmbridge.mapping import FieldMapping
from crmbridge.model import (
    Cursor,
    MappedLead,
    MapResult,
    ObjectSchema,
    Outcome,
    PassSummary,
    PushResult,
    Qualification,
    RecordError,
    RejectStage,
    SourceContact,
)
from crmbridge.pipeline import PARKED_MAX_ATTEMPTS, STREAM, SyncPipeline
from crmbridge.ports import Page, RejectFilter
from crmbridge.redaction import MASK, register_secret
from crmbridge.rules import RuleSet
from crmbridge.state.sqlite import SQLiteStateStore
from crmbridge.testing import FakeLeadSink, FakeLeadSource, reference_lead_schema

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NOW_S = 1_800_000_000.0

QUALIFIED = {
    "firstname": "Ana",
    "lastname": "Lima",
    "company": "Acme Tools",
    "email": "ana@example.com",
    "jobtitle": "CEO",
    "industry": "MACHINERY",
    "budget": "90000",
    "need": "supply chain delays",
    "timeline_days": "30",
}


def contact(n: int, *, ms: int | None = None, **props: str | None) -> SourceContact:
    values: dict[str, str | None] = {**QUALIFIED, "email": f"lead{n}@example.com", **props}
    return SourceContact(str(1000 + n), values, ms if ms is not None else 1_000_000 + n)


class Harness:
    def __init__(self, tmp_path: Path, contacts: list[SourceContact], page_size: int = 200):
        config = load_config(MAPPINGS)
        self.source = FakeLeadSource(contacts, page_size=page_size)
        self.sink = FakeLeadSink(reference_lead_schema())
        self.store = SQLiteStateStore(tmp_path / "state.db")
        self.slept: list[float] = []
        self.stop = threading.Event()
        self.pipeline = SyncPipeline(
            source=self.source,
            sink=self.sink,
            store=self.store,
            mapping=config.mapping,
            rules=config.rules,
            clock=lambda: NOW_S,
            sleep=self.slept.append,
            stop=self.stop,
        )


Make = Callable[..., Harness]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    harnesses: list[Harness] = []

    def _make(contacts: list[SourceContact], page_size: int = 200) -> Harness:
        harness = Harness(tmp_path, contacts, page_size)
        harnesses.append(harness)
        return harness

    yield _make
    for harness in harnesses:
        harness.store.close()


def test_batches_fill_across_page_boundaries(make: Make) -> None:
    """Three pages of 150 leads go out as batches of 200, 200 and 50."""
    h = make([contact(i) for i in range(450)], page_size=150)
    summary = h.pipeline.run_pass()
    assert summary.created == 450
    assert h.sink.batches == [200, 200, 50]
    assert h.store.get_cursor(STREAM) == Cursor(1_000_449, 1449)


def test_refused_request_is_split_down_to_the_bad_row(make: Make) -> None:
    """A whole-request refusal is halved until only the row at fault is rejected, with its code."""
    h = make([contact(i) for i in range(8)])
    h.sink.refuse_request_with["1000"] = "JSON_PARSER_ERROR"
    summary = h.pipeline.run_pass()
    assert summary.created == 7
    assert summary.rejected_by_reason == {"salesforce.JSON_PARSER_ERROR": 1}
    # 8 refused, 4 refused, 2 refused, 1 refused; then 1, 2 and 4 accepted.
    assert h.sink.batches == [8, 4, 2, 1, 1, 2, 4]
    [record] = h.store.rejects(RejectFilter())
    assert record.decision.contact_id == "1000"
    assert record.decision.reasons[0].code == "JSON_PARSER_ERROR"


def test_lead_still_locked_after_many_passes_becomes_a_visible_reject(make: Make) -> None:
    """A parked lead is not retried for ever: after the cap it is a GAVE_UP reject."""
    h = make([contact(0)])
    lock = RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")
    h.sink.row_errors["1000"] = [lock] * 1000
    first = h.pipeline.run_pass()
    assert first.parked == 1
    for _ in range(PARKED_MAX_ATTEMPTS - 1):
        assert h.pipeline.run_pass().parked == 1
    last = h.pipeline.run_pass()
    assert last.parked == 0
    assert last.rejected_by_reason == {"salesforce.GAVE_UP": 1}
    assert h.store.count_parked() == 0


def test_archived_contact_is_skipped_and_never_pushed(make: Make) -> None:
    """An archived contact reaching the pipeline is recorded as skipped, not pushed."""
    h = make([])
    schema = reference_lead_schema()
    settled, to_push = h.pipeline.judge_page([replace(contact(0), archived=True)], schema)
    assert to_push == []
    assert [d.outcome for d in settled] == [Outcome.SKIPPED]


def test_same_contact_twice_in_a_page_is_pushed_once(make: Make) -> None:
    """Two versions of one contact in a page become one upsert of the newer version."""
    h = make([])
    old = contact(0, ms=10, jobtitle="CEO")
    new = contact(0, ms=20, jobtitle="CFO")
    _, to_push = h.pipeline.judge_page([old, new], reference_lead_schema())
    assert len(to_push) == 1
    assert to_push[0].payload is not None
    assert to_push[0].payload["Title"] == "CFO"


def test_stop_request_ends_the_pass_after_the_current_page(make: Make) -> None:
    """A stop request during a page ends the pass once that page is pushed and committed."""
    h = make([contact(i) for i in range(300)], page_size=100)
    pull = h.source.pull

    def pull_then_signal(*args: Any, **kwargs: Any) -> Iterator[Page]:
        for page in pull(*args, **kwargs):
            h.stop.set()  # the signal arrives while the first page is being handled
            yield page

    h.source.pull = pull_then_signal  # type: ignore[method-assign]
    summary = h.pipeline.run_pass()
    assert summary.interrupted
    assert summary.stopped_early is None
    assert summary.created == 100
    assert h.sink.batches == [100]
    assert h.store.get_cursor(STREAM) == Cursor(1_000_099, 1099)


def test_mapping_that_does_not_fit_the_org_is_a_config_error(make: Make) -> None:
    """A field the org lacks stops the pass with a ConfigError pointing into fields.yaml."""
    h = make([contact(0)])
    fields = dict(reference_lead_schema().fields)
    del fields["Budget__c"]
    h.sink.schema = replace(h.sink.schema, fields=fields)
    with pytest.raises(ConfigError, match=r"fields\.yaml:\d+"):
        h.pipeline.run_pass()
    assert h.sink.batches == []


def test_daemon_loop_exits_cleanly_when_stopped(make: Make) -> None:
    """run_loop returns 0 once the stop event is set after a pass."""
    h = make([contact(0)])
    summaries: list[PassSummary] = []

    def on_pass(summary: PassSummary) -> None:
        summaries.append(summary)
        h.stop.set()

    code = run_loop(h.pipeline, poll_interval_s=3600, stop=h.stop, on_pass=on_pass)
    assert code == EXIT_OK
    assert [s.created for s in summaries] == [1]


def test_daemon_retries_crashed_passes_with_bounded_backoff_and_never_exits(make: Make) -> None:
    """Crashed passes are retried after 30 s, 60 s … capped at 15 min; then a pass runs."""
    h = make([contact(0)])
    real_pass = h.pipeline.run_pass
    crashes = 8

    def flaky(*, dry_run: bool = False) -> PassSummary:
        nonlocal crashes
        if crashes:
            crashes -= 1
            raise RuntimeError("bug")
        return real_pass(dry_run=dry_run)

    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return len(waits) > 8  # the stop request arrives during the wait after the good pass

    h.pipeline.run_pass = flaky  # type: ignore[method-assign]
    with capture_logs() as logs:
        code = run_loop(h.pipeline, poll_interval_s=300, stop=h.stop, wait=wait)
    assert code == EXIT_OK
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900, 300]
    assert [e["consecutive"] for e in logs if e["event"] == "pass_crashed"] == list(range(1, 9))
    assert h.sink.leads


def test_a_stop_request_during_the_crash_backoff_ends_the_daemon_cleanly(make: Make) -> None:
    """SIGTERM while waiting to retry a crashed pass exits 0 at once."""
    h = make([contact(0)])

    def broken(*, dry_run: bool = False) -> PassSummary:
        raise RuntimeError("bug")

    h.pipeline.run_pass = broken  # type: ignore[method-assign]
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return True

    assert run_loop(h.pipeline, poll_interval_s=300, stop=h.stop, wait=wait) == EXIT_OK
    assert waits == [30]


def test_a_crashed_single_pass_exits_4_not_the_credentials_code(make: Make) -> None:
    """`sync --once` whose pass crashes exits 4 (a bug, cursor kept), never 3."""
    h = make([contact(0)])

    def broken(*, dry_run: bool = False) -> PassSummary:
        raise RuntimeError("bug")

    h.pipeline.run_pass = broken  # type: ignore[method-assign]
    code = run_loop(h.pipeline, poll_interval_s=0, stop=h.stop, once=True)
    assert code == EXIT_CRASHED == 4
    assert code != EXIT_FATAL


def test_lone_surrogate_in_a_title_syncs_the_whole_page(make: Make) -> None:
    """A title cut inside an emoji is sent with U+FFFD; the page syncs and the input is kept."""
    h = make([contact(0, jobtitle="Analyst \ud83d"), contact(1), contact(2, company="Acme\x00")])
    summary = h.pipeline.run_pass()
    assert summary.stopped_early is None
    assert summary.created == 2
    assert summary.rejected_by_reason == {"authority": 1}
    assert h.sink.leads["1002"]["Company"] == "Acme"
    [decision] = h.store.decisions_of("1000")
    assert decision.inputs["jobtitle"] == "Analyst \ud83d"
    assert h.pipeline.run_pass().pulled == 0


class ExplodingRules(RuleSet):
    """The shipped rules, except that judging one contact id raises (a bug in a rule)."""

    def __init__(self, base: RuleSet, contact_id: str) -> None:
        super().__init__(base.spec, source=base.source)
        self.contact_id = contact_id

    def evaluate(self, contact: SourceContact) -> Qualification:
        if contact.id == self.contact_id:
            raise KeyError("budget \ud83d")
        return super().evaluate(contact)


class ExplodingMapping(FieldMapping):
    """The shipped map, except that mapping one contact id raises (a bug in a transform)."""

    error: Exception = ZeroDivisionError("division by zero")

    def __init__(self, base: FieldMapping, contact_id: str) -> None:
        super().__init__(
            target_object=base.target_object,
            external_id_field=base.external_id_field,
            rules=base.rules,
            stage_map=base.stage_map,
            options=base.options,
            locations=base.locations,
        )
        self.contact_id = contact_id

    def map_fields(self, contact: SourceContact, schema: ObjectSchema) -> MapResult:
        if contact.id == self.contact_id:
            raise self.error
        return super().map_fields(contact, schema)


class ExplodingSink(FakeLeadSink):
    """A fake sink whose client raises an unexpected (non-crmbridge) error for one contact."""

    bad_id: str = ""
    error: Exception = ValueError("Out of range float values are not JSON compliant")

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        if any(lead.contact_id == self.bad_id for lead in leads):
            self.calls += 1
            self.batches.append(len(leads))
            raise self.error
        return super().upsert(leads)


def test_a_rule_that_raises_for_one_contact_rejects_only_that_contact(make: Make) -> None:
    """An exception while judging one contact is its reject ("internal"); the page syncs."""
    h = make([contact(i) for i in range(5)])
    h.pipeline.rules = ExplodingRules(h.pipeline.rules, "1002")
    with capture_logs() as logs:
        summary = h.pipeline.run_pass()
    assert summary.stopped_early is None
    assert summary.created == 4
    assert summary.rejected_by_reason == {"internal": 1}
    assert sorted(h.sink.leads) == ["1000", "1001", "1003", "1004"]
    [record] = h.store.rejects(RejectFilter(criterion="internal"))
    assert record.decision.contact_id == "1002"
    assert record.decision.stage is RejectStage.QUALIFICATION
    [reason] = record.decision.reasons
    assert reason.message == "internal error: KeyError: 'budget \\ud83d'"
    assert reason.code == "INTERNAL"
    assert record.decision.inputs["jobtitle"] == "CEO"
    [event] = [e for e in logs if e["event"] == "contact_internal_error"]
    assert event["contact_id"] == "1002"
    assert event["exc_info"] is True
    assert event["log_level"] == "error"
    assert h.store.get_cursor(STREAM) == Cursor(1_000_004, 1004)


def test_a_mapping_that_raises_for_one_contact_rejects_only_that_contact(make: Make) -> None:
    """An exception while mapping one contact is its reject at the mapping stage."""
    h = make([contact(i) for i in range(3)])
    h.pipeline.mapping = ExplodingMapping(h.pipeline.mapping, "1000")
    summary = h.pipeline.run_pass()
    assert (summary.created, summary.rejected) == (2, 1)
    [record] = h.store.rejects(RejectFilter())
    assert record.decision.stage is RejectStage.MAPPING
    assert record.decision.qualified
    assert [r.message for r in record.decision.reasons] == [
        "internal error: ZeroDivisionError: division by zero"
    ]


def test_a_sink_error_for_one_row_is_isolated_like_a_refused_request(make: Make) -> None:
    """An unexpected sink exception is split down to the row at fault, which is rejected."""
    h = make([contact(i) for i in range(8)])
    sink = ExplodingSink(reference_lead_schema())
    sink.bad_id = "1005"
    h.sink = h.pipeline.sink = sink
    summary = h.pipeline.run_pass()
    assert summary.created == 7
    assert summary.rejected_by_reason == {"internal": 1}
    # 8 failed; 4 ok; 4 failed, 2 failed, 1 ok, 1 failed (the row at fault); 2 ok.
    assert sink.batches == [8, 4, 4, 2, 1, 1, 2]
    assert summary.salesforce_calls == 1 + 7  # the describe, then the upserts
    [record] = h.store.rejects(RejectFilter())
    assert record.decision.contact_id == "1005"
    assert record.decision.stage is RejectStage.SALESFORCE
    assert record.decision.reasons[0].message == (
        "internal error: ValueError: Out of range float values are not JSON compliant"
    )


TOKEN = "00Dxx0000001gPL!AQ4AQFakeSessionTokenForInternalErrors"


def test_an_internal_error_reason_never_holds_a_secret(make: Make) -> None:
    """An unexpected exception quoting a registered token (from the map or from the sink) is
    stored and counted as an internal reject whose reason shows the mask, never the token."""
    register_secret(TOKEN)
    h = make([contact(i) for i in range(4)])
    mapping = ExplodingMapping(h.pipeline.mapping, "1000")
    mapping.error = ValueError(f"bad header {{'Authorization': 'Bearer {TOKEN}'}}")
    h.pipeline.mapping = mapping
    sink = ExplodingSink(reference_lead_schema())
    sink.bad_id = "1002"
    # Cut at the reason's length limit, the token would be half-shown if masked after the cut.
    sink.error = RuntimeError("x" * (INTERNAL_MESSAGE_MAX_CHARS - 60) + TOKEN)
    h.sink = h.pipeline.sink = sink
    summary = h.pipeline.run_pass()
    assert summary.rejected_by_reason == {"internal": 2}
    records = {r.decision.contact_id: r for r in h.store.rejects(RejectFilter())}
    [mapped] = records["1000"].decision.reasons
    assert mapped.message == (
        f"internal error: ValueError: bad header {{'Authorization': 'Bearer {MASK}'}}"
    )
    [pushed] = records["1002"].decision.reasons
    assert pushed.message.endswith("x" + MASK)
    for record in records.values():
        assert TOKEN[:12] not in json.dumps(reports.reject_json(record))


def test_crmbridge_errors_from_the_sink_still_stop_the_pass(make: Make) -> None:
    """A retryable outage is not a row's fault: the pass stops and nothing is rejected."""
    h = make([contact(i) for i in range(4)])

    def outage(leads: Sequence[MappedLead]) -> list[PushResult]:
        raise RetryableApiError("salesforce", "connection lost")

    h.sink.upsert = outage  # type: ignore[method-assign]
    summary = h.pipeline.run_pass()
    assert summary.stopped_early is not None
    assert summary.rejected == 0
    assert h.store.get_cursor(STREAM) == Cursor()


API_DISABLED = FatalApiError(
    "salesforce",
    "API is not enabled for this Organization or Partner",
    code="API_DISABLED_FOR_ORG",
)


def refuse_pushes(h: Harness, error: Exception, *, passes: int) -> None:
    """Make the sink raise ``error`` on every push of the next ``passes`` passes."""
    push = h.sink.upsert
    left = passes

    def upsert(leads: Sequence[MappedLead]) -> list[PushResult]:
        nonlocal left
        if left:
            left -= 1
            raise error
        return push(leads)

    h.sink.upsert = upsert  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("error", "credentials_refused", "blocked"),
    [
        (AuthenticationError("hubspot", "authentication failed", code="INVALID_AUTH"), True, False),
        (API_DISABLED, False, True),
        (FatalApiError("hubspot", "missing scopes", code="MISSING_SCOPES"), False, True),
        (FatalApiError("salesforce", "TLS verification failed", code="TLS"), False, True),
        (
            BudgetExhaustedError("salesforce", "daily API budget", code="RESERVE_REACHED"),
            False,
            False,
        ),
        (RetryableApiError("salesforce", "connection lost"), False, False),
    ],
)
def test_a_stopped_pass_says_whether_credentials_were_refused(
    make: Make, error: Exception, credentials_refused: bool, blocked: bool
) -> None:
    """Only refused credentials set ``credentials_refused``; another refusal a person must fix
    is ``blocked``; a spent budget or an outage is neither; the cursor stays in every case."""
    h = make([contact(i) for i in range(4)])
    refuse_pushes(h, error, passes=1)
    summary = h.pipeline.run_pass()
    assert summary.stopped_early == f"{type(error).__name__}: {error}"
    assert summary.credentials_refused is credentials_refused
    assert summary.blocked is blocked
    assert h.store.get_cursor(STREAM) == Cursor()


def test_a_single_pass_refused_for_other_than_credentials_exits_1(make: Make) -> None:
    """`sync --once` whose pass Salesforce refuses with API_DISABLED_FOR_ORG exits 1, never 3."""
    h = make([contact(0)])
    refuse_pushes(h, API_DISABLED, passes=1)
    code = run_loop(h.pipeline, poll_interval_s=0, stop=h.stop, once=True)
    assert code == EXIT_STOPPED_EARLY == 1
    assert h.sink.leads == {}


def test_the_daemon_keeps_trying_a_refused_pass_with_backoff_and_resumes(make: Make) -> None:
    """Refused passes are retried after the crash backoff (never sooner than the poll
    interval) without exiting; once the refusal is lifted the lead is pushed and the daemon
    polls at its interval again."""
    h = make([contact(0)])
    refuse_pushes(h, API_DISABLED, passes=7)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return len(waits) > 7  # the stop request arrives during the wait after the good pass

    with capture_logs() as logs:
        code = run_loop(h.pipeline, poll_interval_s=60, stop=h.stop, wait=wait)
    assert code == EXIT_OK
    assert waits == [60, 60, 120, 240, 480, 900, 900, 60]
    assert [e["consecutive"] for e in logs if e["event"] == "pass_blocked"] == list(range(1, 8))
    assert list(h.sink.leads) == ["1000"]
