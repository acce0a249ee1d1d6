"""The push journal: after a crash between a push and its commit, nothing is pushed twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from crmbridge.errors import RequestRejectedError
from crmbridge.journal import Intent, JournaledSink, already_there, plan_push
from crmbridge.judgement import payload_hash
from crmbridge.model import MappedLead, PushResult, RecordError
from crmbridge.testing import FakeLeadSink, reference_lead_schema

EXT = "HubSpot_Contact_Id__c"


def lead(contact_id: str, **fields: object) -> MappedLead:
    return MappedLead(contact_id, {EXT: contact_id, "LastName": "Lima", **fields})


class FakeJournal:
    """The journal in memory, as the store keeps it."""

    def __init__(self) -> None:
        self.rows: dict[str, Intent] = {}
        self.began: list[list[str]] = []

    def begin(self, hashes: Mapping[str, str]) -> dict[str, Intent]:
        earlier = {cid: self.rows[cid] for cid in hashes if cid in self.rows}
        self.began.append(list(hashes))
        for cid, digest in hashes.items():
            before = earlier.get(cid)
            if before is None or before.payload_hash != digest:
                had = (before.had_lead or before.answered) if before else False
                self.rows[cid] = Intent(cid, digest, had)
        return earlier

    def answered(self, results: Sequence[PushResult]) -> None:
        for result in results:
            row = self.rows.get(result.contact_id)
            if row is None:
                continue
            if result.success and result.salesforce_id:
                self.rows[result.contact_id] = Intent(
                    row.contact_id,
                    row.payload_hash,
                    row.had_lead,
                    result.salesforce_id,
                    result.created,
                )
            else:
                del self.rows[result.contact_id]

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def sink() -> FakeLeadSink:
    return FakeLeadSink(reference_lead_schema())


def test_a_lead_without_a_journal_row_is_pushed() -> None:
    """Nothing in flight for it: push."""
    plan = plan_push([lead("1")], {})
    assert [x.contact_id for x in plan.push] == ["1"]
    assert not plan.answered
    assert not plan.check


def test_a_changed_payload_is_pushed_whatever_the_journal_says() -> None:
    """The row is about an older payload: the new one must be sent."""
    row = Intent("1", payload_hash(lead("1").fields), False, "00Q1", True)
    plan = plan_push([lead("1", Company="New")], {"1": row})
    assert [x.contact_id for x in plan.push] == ["1"]


def test_an_answered_push_of_the_same_payload_is_not_repeated() -> None:
    """Salesforce answered the dead runner: its answer stands, created flag included."""
    row = Intent("1", payload_hash(lead("1").fields), False, "00Q1", True)
    plan = plan_push([lead("1")], {"1": row})
    assert plan.answered == {"1": PushResult("1", success=True, salesforce_id="00Q1", created=True)}
    assert not plan.push


def test_an_unanswered_push_of_the_same_payload_is_checked_first() -> None:
    """The runner died during the call: ask Salesforce before pushing."""
    row = Intent("1", payload_hash(lead("1").fields), False)
    plan = plan_push([lead("1")], {"1": row})
    assert [x.contact_id for x in plan.check] == ["1"]


@pytest.mark.parametrize(
    ("sent", "held", "same"),
    [
        ("Lima", "Lima", True),
        ("Lima", "lima", False),
        (120000, 120000.0, True),
        (120000.5, 120000.0, False),
        (None, None, True),
        ("", None, True),
        (None, "x", False),
        (True, True, True),
        (True, 1, False),
        ("90", 90, False),
    ],
)
def test_already_there_compares_as_salesforce_returns_values(
    sent: object, held: object, same: bool
) -> None:
    """Numbers as numbers, empty as none, everything else exactly; doubt means different."""
    assert already_there({"F": sent}, {"F": held}) is same


def test_a_field_salesforce_did_not_return_counts_as_different() -> None:
    """A payload field missing from the record cannot be compared: push."""
    assert not already_there({"F": "x"}, {})


def test_a_first_push_is_journalled_then_answered(sink: FakeLeadSink) -> None:
    """Row before the call, Salesforce's answer after it."""
    journal = FakeJournal()
    results = JournaledSink(sink, journal).upsert([lead("1"), lead("2")])
    assert [r.success for r in results] == [True, True]
    assert sink.batches == [2]
    assert journal.rows["1"].answered
    assert journal.rows["1"].created is True


def test_after_a_crash_after_the_answer_nothing_is_pushed_again(sink: FakeLeadSink) -> None:
    """The page was never committed: the next runner gets the same answers without a call."""
    journal = FakeJournal()
    first = JournaledSink(sink, journal).upsert([lead("1"), lead("2")])
    calls = sink.calls
    again = JournaledSink(sink, journal)
    assert again.upsert([lead("1"), lead("2")]) == first
    assert sink.calls == calls
    assert again.recovered == 2


def test_after_a_crash_during_the_call_salesforce_is_asked_once(sink: FakeLeadSink) -> None:
    """No answer recorded: one query; leads Salesforce holds as sent are not pushed again,
    created (the ledger knew no record before); a lead it lacks is pushed."""
    journal = FakeJournal()
    sink.upsert([lead("1")])  # the dead runner's call reached Salesforce for lead 1 only
    journal.begin({"1": payload_hash(lead("1").fields), "2": payload_hash(lead("2").fields)})
    results = JournaledSink(sink, journal).upsert([lead("1"), lead("2")])
    assert sink.queries == [2]
    assert sink.batches == [1, 1]  # the dead runner's, then lead 2 alone
    assert results[0] == PushResult(
        "1", success=True, salesforce_id=results[0].salesforce_id, created=True
    )
    assert results[1].created is True
    assert journal.rows["1"].answered


def test_a_lead_salesforce_holds_differently_is_pushed(sink: FakeLeadSink) -> None:
    """Salesforce holds an older value (someone edited it, or the call never arrived): push."""
    journal = FakeJournal()
    sink.upsert([lead("1", Company="Old")])
    journal.begin({"1": payload_hash(lead("1", Company="New").fields)})
    JournaledSink(sink, journal).upsert([lead("1", Company="New")])
    assert sink.batches == [1, 1]
    assert sink.leads["1"]["Company"] == "New"


def test_a_request_refused_whole_leaves_nothing_in_flight(sink: FakeLeadSink) -> None:
    """Nothing was written: the rows go, so the split halves are pushed without a query."""
    journal = FakeJournal()
    sink.refuse_request_with["2"] = "JSON_PARSER_ERROR"
    with pytest.raises(RequestRejectedError):
        JournaledSink(sink, journal).upsert([lead("1"), lead("2")])
    assert journal.rows == {}
    JournaledSink(sink, journal).upsert([lead("1")])
    assert sink.queries == []


def test_a_row_salesforce_refused_leaves_nothing_in_flight(sink: FakeLeadSink) -> None:
    """A failed row was not written: its journal row goes."""
    journal = FakeJournal()
    sink.row_errors["2"] = [RecordError("UNABLE_TO_LOCK_ROW", "locked")]
    JournaledSink(sink, journal).upsert([lead("1"), lead("2")])
    assert set(journal.rows) == {"1"}


def test_a_changed_lead_first_pushed_by_a_dead_runner_is_recorded_as_created(
    sink: FakeLeadSink,
) -> None:
    """The dead runner's push created the Lead, the contact changed since: the new push is an
    update to Salesforce, and a creation to the ledger, which never recorded the first."""
    journal = FakeJournal()
    sink.upsert([lead("1", Company="Old")])
    journal.begin({"1": payload_hash(lead("1", Company="Old").fields)})
    [result] = JournaledSink(sink, journal).upsert([lead("1", Company="New")])
    assert result.created is True
    assert journal.rows["1"].created is True


def test_a_lead_the_ledger_knew_stays_an_update(sink: FakeLeadSink) -> None:
    """had_lead: the earlier push updated an existing Lead, and so does this one."""
    journal = FakeJournal()
    sink.upsert([lead("1", Company="Old")])
    journal.rows["1"] = Intent("1", "an older payload", had_lead=True)
    [result] = JournaledSink(sink, journal).upsert([lead("1", Company="New")])
    assert result.created is False
