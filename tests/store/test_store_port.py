"""The ``StateStore`` port's contract, run on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.exc import IntegrityError

from crmbridge.errors import StateStoreMissingError
from crmbridge.model import Cursor, Outcome, Reason, RejectStage
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.state import open_store
from tests.decisions import SALESFORCE_ID, decision

STREAM = "hubspot.contacts"


# -- cursor ------------------------------------------------------------------------------------
def test_cursor_starts_empty_and_survives_reopening(store: StateStore, store_url: str) -> None:
    """A new store's cursor is empty; a committed one is there after reopening the store."""
    assert store.get_cursor(STREAM) == Cursor()
    store.commit_page(STREAM, [], Cursor(5_000, 42))
    store.close()
    again = open_store(store_url)
    try:
        assert again.get_cursor(STREAM) == Cursor(5_000, 42)
        assert again.get_cursor("another.stream") == Cursor()
    finally:
        again.close()


def test_cursor_moves_forward_on_each_commit(store: StateStore) -> None:
    """Each commit replaces the stream's cursor; a commit without one leaves it."""
    store.commit_page(STREAM, [], Cursor(1_000, 1))
    store.commit_page(STREAM, [], Cursor(2_000, 7))
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], None)
    assert store.get_cursor(STREAM) == Cursor(2_000, 7)


# -- one transaction ---------------------------------------------------------------------------
def test_a_failure_in_the_code_mid_commit_keeps_nothing(store: StateStore) -> None:
    """A decision that cannot be encoded half way through a page keeps no row and no cursor."""
    good = decision("1", Outcome.CREATED)
    broken = decision("2", Outcome.CREATED, inputs={"x": object()})  # not JSON-serialisable
    with pytest.raises(TypeError):
        store.commit_page(STREAM, [good, broken], Cursor(9_000, 2))
    assert store.get_cursor(STREAM) == Cursor()
    assert store.ledger(["1", "2"]) == {}
    assert store.decisions_of("1") == []


def test_a_failure_in_the_database_mid_commit_keeps_nothing(store: StateStore) -> None:
    """A row the database refuses half way through a page rolls back the rows before it."""
    good = decision("1", Outcome.REJECTED)
    refused = decision("2", Outcome.REJECTED, rule_set_version=None)  # NOT NULL column
    with pytest.raises(IntegrityError):
        store.commit_page(STREAM, [good, refused], Cursor(9_000, 2))
    assert store.get_cursor(STREAM) == Cursor()
    assert store.count_rejects(RejectFilter()) == 0
    assert store.ledger(["1"]) == {}


# -- ledger ------------------------------------------------------------------------------------
def test_ledger_keeps_salesforce_id_and_hash(store: StateStore) -> None:
    """A synced decision records the Salesforce id and the payload hash for skip checks."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], Cursor(1_000, 1))
    entry = store.ledger(["1"])["1"]
    assert (entry.status, entry.salesforce_id, entry.payload_hash) == (
        "synced",
        SALESFORCE_ID,
        "h1",
    )
    assert entry.rule_set_version == "v1"
    assert store.ledger(["unknown"]) == {}


def test_reject_after_sync_keeps_what_salesforce_holds(store: StateStore) -> None:
    """A later reject does not forget the Salesforce id or the hash of the pushed payload."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED, modified_at_ms=2_000)], None)
    entry = store.ledger(["1"])["1"]
    assert (entry.status, entry.salesforce_id, entry.payload_hash) == (
        "rejected",
        SALESFORCE_ID,
        "h1",
    )
    assert entry.modified_at_ms == 2_000


def test_ledger_reads_many_contacts_at_once(store: StateStore) -> None:
    """Asking for more contacts than one query's chunk returns every one that has an entry."""
    page = [decision(str(n), Outcome.REJECTED) for n in range(1_200)]
    store.commit_page(STREAM, page, None)
    entries = store.ledger([str(n) for n in range(1_300)])
    assert len(entries) == 1_200
    assert entries["1199"].status == "rejected"


def test_identical_rejudgement_adds_no_row(store: StateStore) -> None:
    """The same verdict on the same data (only lastmodifieddate moved) is stored once."""
    first = decision("1", Outcome.REJECTED, inputs={"budget": "30000", "lastmodifieddate": "a"})
    bumped = replace(
        first, modified_at_ms=9_000, inputs={"budget": "30000", "lastmodifieddate": "b"}
    )
    store.commit_page(STREAM, [first], None)
    store.commit_page(STREAM, [bumped], None)
    assert len(store.decisions_of("1")) == 1
    assert store.count_rejects(RejectFilter()) == 1
    assert store.ledger(["1"])["1"].modified_at_ms == 9_000


def test_identical_unchanged_lead_adds_no_row_but_a_push_always_does(store: StateStore) -> None:
    """A repeated "unchanged" is stored once; a repeated push is stored each time."""
    store.commit_page(STREAM, [decision("1", Outcome.UNCHANGED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.UNCHANGED, modified_at_ms=2_000)], None)
    store.commit_page(STREAM, [decision("2", Outcome.UPDATED)], None)
    store.commit_page(STREAM, [decision("2", Outcome.UPDATED)], None)
    assert len(store.decisions_of("1")) == 1
    assert len(store.decisions_of("2")) == 2


def test_new_rule_version_is_a_new_decision(store: StateStore) -> None:
    """The same data judged under another rule-set version is stored as a new decision."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED, rule_set_version="v2")], None)
    assert [d.rule_set_version for d in store.decisions_of("1")] == ["v1", "v2"]


def test_outcome_counts_and_contacts_by_status(store: StateStore) -> None:
    """The ledger counts contacts by status and lists them in id order."""
    store.commit_page(
        STREAM,
        [
            decision("3", Outcome.CREATED),
            decision("1", Outcome.UPDATED),
            decision("2", Outcome.REJECTED),
            decision("4", Outcome.PARKED),
            decision("5", Outcome.SKIPPED),
        ],
        None,
    )
    assert store.outcome_counts() == {"synced": 2, "rejected": 1, "parked": 1}
    assert store.contacts_with_status("synced", limit=10) == ["1", "3"]
    assert store.contacts_with_status("synced", limit=1) == ["1"]
    assert store.contacts_with_status("parked", limit=10) == ["4"]


# -- resolution rules --------------------------------------------------------------------------
def test_sync_resolves_earlier_rejects(store: StateStore) -> None:
    """When a rejected contact later syncs, its open reject is resolved, not deleted."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.CREATED, modified_at_ms=2_000)], None)
    assert store.rejects(RejectFilter()) == []
    [resolved] = store.rejects(RejectFilter(include_resolved=True))
    assert resolved.resolution == "synced later"
    assert resolved.resolved_at is not None
    assert resolved.resolved_at.endswith("Z")


def test_new_reject_supersedes_the_old_one(store: StateStore) -> None:
    """A contact rejected again on changed data has one open reject: the newest."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    changed = decision("1", Outcome.REJECTED, modified_at_ms=2_000, inputs={"budget": "20000"})
    store.commit_page(STREAM, [changed], None)
    assert [r.decision.modified_at_ms for r in store.rejects(RejectFilter())] == [2_000]
    everything = store.rejects(RejectFilter(include_resolved=True))
    assert [r.resolution for r in everything] == [None, "superseded"]


def test_parking_supersedes_an_open_reject(store: StateStore) -> None:
    """A rejected contact that now qualifies but is parked no longer has an open reject."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.PARKED, modified_at_ms=2_000)], None)
    assert store.count_rejects(RejectFilter()) == 0
    [old] = store.rejects(RejectFilter(include_resolved=True))
    assert old.resolution == "superseded"


def test_archived_contact_changes_nothing_but_its_history(store: StateStore) -> None:
    """A skipped (archived) decision is recorded but neither resolves nor touches the ledger."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.SKIPPED, modified_at_ms=2_000)], None)
    assert store.count_rejects(RejectFilter()) == 1
    assert store.ledger(["1"])["1"].status == "rejected"
    assert [d.outcome for d in store.decisions_of("1")] == [Outcome.REJECTED, Outcome.SKIPPED]


def test_one_contact_twice_in_one_page_ends_in_its_last_state(store: StateStore) -> None:
    """Two decisions about one contact in a page apply in order: rejected, then synced."""
    store.commit_page(
        STREAM,
        [decision("1", Outcome.REJECTED), decision("1", Outcome.CREATED, modified_at_ms=2_000)],
        None,
    )
    assert store.ledger(["1"])["1"].status == "synced"
    assert store.count_rejects(RejectFilter()) == 0
    [resolved] = store.rejects(RejectFilter(include_resolved=True))
    assert resolved.resolution == "synced later"


def test_two_rejects_of_one_contact_in_one_page_leave_the_second_open(store: StateStore) -> None:
    """A contact rejected twice on different data in one page has its newest reject open."""
    first = decision("1", Outcome.REJECTED)
    second = decision("1", Outcome.REJECTED, modified_at_ms=2_000, inputs={"budget": "1"})
    store.commit_page(STREAM, [first, second], None)
    [open_reject] = store.rejects(RejectFilter())
    assert open_reject.decision == second
    assert [r.resolution for r in store.rejects(RejectFilter(include_resolved=True))] == [
        None,
        "superseded",
    ]


# -- parked ------------------------------------------------------------------------------------
def test_parked_leads_count_attempts_and_clear_on_success(store: StateStore) -> None:
    """A parked lead is listed with its attempts and error until a later outcome clears it."""
    parked = decision("1", Outcome.PARKED)
    store.commit_page(STREAM, [parked], None)
    store.commit_page(STREAM, [parked], None)
    [lead] = store.parked(10)
    assert (lead.attempts, lead.last_error) == (2, "locked")
    assert lead.decision.payload == {"LastName": "Ng"}
    assert store.count_parked() == 1
    store.commit_page(STREAM, [decision("1", Outcome.UPDATED)], None)
    assert store.parked(10) == []
    assert store.count_parked() == 0


def test_parked_leads_come_longest_parked_first(store: StateStore) -> None:
    """``parked`` returns the oldest parks first, up to the limit."""
    store.commit_page(STREAM, [decision("9", Outcome.PARKED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.PARKED)], None)
    store.commit_page(STREAM, [decision("5", Outcome.PARKED)], None)
    assert [p.decision.contact_id for p in store.parked(2)] == ["9", "1"]


def test_a_parked_lead_given_up_becomes_a_reject(store: StateStore) -> None:
    """A parked lead that is rejected leaves the parked list and is an open reject."""
    store.commit_page(STREAM, [decision("1", Outcome.PARKED)], None)
    gave_up = decision(
        "1",
        Outcome.REJECTED,
        stage=RejectStage.SALESFORCE,
        reasons=(Reason("salesforce.GAVE_UP", "still failing", code="GAVE_UP"),),
    )
    store.commit_page(STREAM, [gave_up], None)
    assert store.count_parked() == 0
    assert store.count_rejects(RejectFilter(code="GAVE_UP")) == 1


# -- the reject log ----------------------------------------------------------------------------
def test_reject_log_lists_open_rejects_with_reasons(store: StateStore) -> None:
    """Rejects are listed with their reasons and rule-set version; ``reject`` finds one by id."""
    store.commit_page(
        STREAM, [decision("1", Outcome.REJECTED), decision("2", Outcome.CREATED)], None
    )
    [record] = store.rejects(RejectFilter())
    assert record.decision == decision("1", Outcome.REJECTED)
    assert store.reject(record.id) == record
    assert record.decided_at.endswith("Z")


def test_reject_finds_only_rejects(store: StateStore) -> None:
    """``reject`` answers ``None`` for an unknown id and for a decision that is not a reject."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], None)
    assert store.reject(1) is None
    assert store.reject(999_999) is None


def test_reject_filters(store: StateStore) -> None:
    """Rejects filter by criterion, error code, stage, contact and rule-set version."""
    sf_reason = (
        Reason("salesforce.INVALID_EMAIL_ADDRESS", "Salesforce: bad", code="INVALID_EMAIL_ADDRESS"),
    )
    two_reasons = (
        Reason("budget", "budget: too low", code="RULE"),
        Reason("need", "need: missing", code="RULE"),
    )
    store.commit_page(
        STREAM,
        [
            decision("1", Outcome.REJECTED),
            decision("2", Outcome.REJECTED, stage=RejectStage.SALESFORCE, reasons=sf_reason),
            decision("3", Outcome.REJECTED, rule_set_version="v2"),
            decision("4", Outcome.REJECTED, reasons=two_reasons),
        ],
        None,
    )
    assert store.count_rejects(RejectFilter(criterion="budget")) == 3
    assert store.count_rejects(RejectFilter(criterion="need")) == 1
    assert store.count_rejects(RejectFilter(code="INVALID_EMAIL_ADDRESS")) == 1
    assert store.count_rejects(RejectFilter(code="RULE", criterion="need")) == 1
    assert store.count_rejects(RejectFilter(stage="salesforce")) == 1
    assert store.count_rejects(RejectFilter(contact_id="3")) == 1
    assert store.count_rejects(RejectFilter(rule_set_version="v2")) == 1
    assert store.count_rejects(RejectFilter(criterion="authority")) == 0
    [only] = store.rejects(RejectFilter(criterion="need"))
    assert only.decision.contact_id == "4"


def test_rejects_page_newest_first(store: StateStore) -> None:
    """Rejects come newest first, ``limit`` at a time from ``offset``; the count ignores paging."""
    store.commit_page(STREAM, [decision(str(n), Outcome.REJECTED) for n in range(1, 8)], None)
    query = RejectFilter(limit=3, offset=2)
    assert [r.decision.contact_id for r in store.rejects(query)] == ["5", "4", "3"]
    assert [r.decision.contact_id for r in store.rejects(replace(query, offset=6))] == ["1"]
    assert store.rejects(replace(query, offset=7)) == []
    assert store.count_rejects(query) == 7


def test_rejects_tolerate_negative_paging(store: StateStore) -> None:
    """A negative offset reads as 0 and a negative limit as an empty page, on every backend."""
    store.commit_page(STREAM, [decision(str(n), Outcome.REJECTED) for n in range(1, 4)], None)
    assert len(store.rejects(RejectFilter(offset=-5))) == 3
    assert store.rejects(RejectFilter(limit=-1)) == []


def test_decisions_of_is_the_contacts_history(store: StateStore) -> None:
    """``decisions_of`` returns every decision about one contact, oldest first, as stored."""
    history = [
        decision("1", Outcome.REJECTED),
        decision("1", Outcome.CREATED, modified_at_ms=2_000),
        decision("1", Outcome.UPDATED, modified_at_ms=3_000),
    ]
    for item in history:
        store.commit_page(STREAM, [item], None)
    store.commit_page(STREAM, [decision("2", Outcome.CREATED)], None)
    assert store.decisions_of("1") == history
    assert store.decisions_of("unknown") == []


# -- what a store holds ------------------------------------------------------------------------
HOSTILE = {
    "lone surrogate": "Head of \ud83d",
    "low surrogate first": "\udc00 then text",
    "nul": "before\x00after",
    "emoji": "Zoë 🚀 CFO",
    "escape mark": "\ufdd0 looks escaped",
    "control characters": "\x1b[2J\x1b]0;owned\x07\r\n\t\b",
    "long": "x" * 10_000 + "\ud800",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_round_trips_exactly(store: StateStore, text: str) -> None:
    """Any string in any text field comes back exactly, and filters by it find it."""
    hostile = decision(
        text,
        Outcome.REJECTED,
        email=text,
        rule_set_version=text,
        inputs={text: text, "budget": text},
        reasons=(Reason(text, text, code=text, fields=(text,)),),
    )
    store.commit_page(STREAM, [hostile], None)
    [record] = store.rejects(RejectFilter(criterion=text))
    assert record.decision == hostile
    assert store.count_rejects(RejectFilter(code=text, contact_id=text, rule_set_version=text)) == 1
    assert store.decisions_of(text) == [hostile]
    assert store.ledger([text])[text].rule_set_version == text
    store.commit_page(STREAM, [replace(hostile, outcome=Outcome.PARKED)], None)
    [parked] = store.parked(1)
    assert parked.last_error == text
    assert parked.decision.inputs == {text: text, "budget": text}


def test_large_timestamps_and_ids_round_trip(store: StateStore) -> None:
    """Millisecond timestamps and contact ids beyond 32 bits are kept exactly."""
    late = decision("1", Outcome.CREATED, modified_at_ms=4_102_444_800_000)
    store.commit_page(STREAM, [late], Cursor(4_102_444_800_000, 98_765_432_101))
    assert store.get_cursor(STREAM) == Cursor(4_102_444_800_000, 98_765_432_101)
    assert store.decisions_of("1")[0].modified_at_ms == 4_102_444_800_000


# -- identity and pipelines --------------------------------------------------------------------
def test_identity_is_recorded_once_and_kept(store: StateStore, store_url: str) -> None:
    """A store's identity (id, pipeline, creation time and place) is the same when reopened."""
    identity = store.identity()
    assert identity.pipeline == "default"
    assert identity.created_at.endswith("Z")
    assert not identity.moved
    store.close()
    again = open_store(store_url)
    try:
        assert again.identity() == identity
    finally:
        again.close()


def test_a_missing_pipeline_is_not_created_implicitly(store: StateStore, store_url: str) -> None:
    """Opening a store for a pipeline nobody initialised refuses instead of starting afresh."""
    with pytest.raises(StateStoreMissingError, match="pipeline 'west'"):
        open_store(store_url, pipeline="west")
    store.commit_page(STREAM, [], Cursor(1, 1))  # the default pipeline is untouched
    assert store.get_cursor(STREAM) == Cursor(1, 1)


def test_pipelines_sharing_a_database_see_only_their_own_state(
    store: StateStore, store_url: str
) -> None:
    """Two pipelines in one database keep separate cursors, ledgers, rejects and parked leads."""
    west = open_store(store_url, pipeline="west", create=True)
    try:
        store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], Cursor(1_000, 1))
        west.commit_page(
            STREAM, [decision("1", Outcome.CREATED), decision("2", Outcome.PARKED)], Cursor(5, 5)
        )
        assert store.get_cursor(STREAM) == Cursor(1_000, 1)
        assert west.get_cursor(STREAM) == Cursor(5, 5)
        assert store.ledger(["1"])["1"].status == "rejected"
        assert west.ledger(["1"])["1"].status == "synced"
        assert store.count_rejects(RejectFilter(criterion="budget")) == 1
        assert west.count_rejects(RejectFilter(include_resolved=True)) == 0
        assert (store.count_parked(), west.count_parked()) == (0, 1)
        assert west.identity().store_id != store.identity().store_id
        [reject] = store.rejects(RejectFilter())
        assert west.reject(reject.id) is None
    finally:
        west.close()
