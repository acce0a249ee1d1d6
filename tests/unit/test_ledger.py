"""The ledger's rules, as pure functions: what one decision changes for its contact."""

from __future__ import annotations

from dataclasses import replace

from crmbridge.model import Outcome
from crmbridge.ports import LedgerEntry
from crmbridge.state.ledger import SUPERSEDED, SYNCED_LATER, ContactState, Park, plan
from tests.decisions import SALESFORCE_ID, decision

NEVER_SEEN = ContactState()


def state_after(*outcomes: Outcome) -> ContactState:
    """The contact's state after decisions with these outcomes, one per pass."""
    state = NEVER_SEEN
    for n, outcome in enumerate(outcomes):
        state = plan(decision("1", outcome, modified_at_ms=1_000 + n), state).after
    return state


def test_a_first_push_records_it_and_the_ledger_holds_the_lead() -> None:
    """A created lead is recorded; the ledger keeps its Salesforce id and payload hash."""
    step = plan(decision("1", Outcome.CREATED), NEVER_SEEN)
    assert step.record
    assert step.resolution is None
    assert (step.park, step.unpark) == (None, False)
    assert step.ledger == LedgerEntry("1", "synced", 1_000, "h1", SALESFORCE_ID, "v1")


def test_a_sync_after_a_reject_resolves_it_as_synced_later() -> None:
    """A contact whose ledger says rejected has an open reject: a push resolves it."""
    step = plan(decision("1", Outcome.UPDATED), state_after(Outcome.REJECTED))
    assert step.resolution == SYNCED_LATER
    assert plan(decision("1", Outcome.UNCHANGED), state_after(Outcome.REJECTED)).resolution == (
        SYNCED_LATER
    )


def test_a_new_reject_or_park_supersedes_an_open_reject() -> None:
    """A changed reject, or a park, of a rejected contact resolves the old one as superseded."""
    before = state_after(Outcome.REJECTED)
    changed = decision("1", Outcome.REJECTED, inputs={"budget": "1"})
    assert plan(changed, before).resolution == SUPERSEDED
    assert plan(decision("1", Outcome.PARKED), before).resolution == SUPERSEDED


def test_nothing_to_resolve_unless_the_contact_was_rejected() -> None:
    """Synced or parked contacts have no open reject, so no resolution is planned."""
    assert plan(decision("1", Outcome.REJECTED), state_after(Outcome.CREATED)).resolution is None
    assert plan(decision("1", Outcome.CREATED), state_after(Outcome.PARKED)).resolution is None


def test_an_identical_rejudgement_only_moves_the_ledger() -> None:
    """The same reject again (only lastmodifieddate moved) records nothing new."""
    first = decision("1", Outcome.REJECTED, inputs={"budget": "1", "lastmodifieddate": "a"})
    before = plan(first, NEVER_SEEN).after
    again = replace(first, modified_at_ms=9_000, inputs={"budget": "1", "lastmodifieddate": "b"})
    step = plan(again, before)
    assert not step.record
    assert step.resolution is None
    assert before.ledger is not None
    assert step.ledger == replace(before.ledger, modified_at_ms=9_000)
    assert step.fingerprint == before.fingerprint


def test_a_push_is_recorded_even_when_identical() -> None:
    """Pushing the same payload twice is two decisions: each was a call to Salesforce."""
    before = state_after(Outcome.UPDATED)
    assert plan(decision("1", Outcome.UPDATED, modified_at_ms=1_000), before).record


def test_a_reject_keeps_what_salesforce_holds() -> None:
    """A reject after a sync keeps the Salesforce id and the hash of the last push."""
    step = plan(decision("1", Outcome.REJECTED), state_after(Outcome.CREATED))
    assert step.ledger is not None
    assert (step.ledger.status, step.ledger.salesforce_id, step.ledger.payload_hash) == (
        "rejected",
        SALESFORCE_ID,
        "h1",
    )


def test_a_new_push_replaces_the_hash() -> None:
    """A push records the new payload's hash, and its own Salesforce id when it has one."""
    pushed = decision("1", Outcome.UPDATED, payload_hash="h2", salesforce_id=None)
    step = plan(pushed, state_after(Outcome.CREATED))
    assert step.ledger is not None
    assert (step.ledger.payload_hash, step.ledger.salesforce_id) == ("h2", SALESFORCE_ID)


def test_parking_counts_attempts_and_any_other_outcome_unparks() -> None:
    """Each park adds an attempt; the next non-parked outcome unparks the lead."""
    first = plan(decision("1", Outcome.PARKED), NEVER_SEEN)
    assert first.park == Park(1, "locked")
    second = plan(decision("1", Outcome.PARKED), first.after)
    assert second.park == Park(2, "locked")
    assert second.after.parked_attempts == 2
    done = plan(decision("1", Outcome.UPDATED), second.after)
    assert (done.park, done.unpark) == (None, True)
    assert done.after.parked_attempts == 0


def test_a_park_without_reasons_says_transient_failure() -> None:
    """A parked lead whose decision carries no reason shows a generic error."""
    step = plan(decision("1", Outcome.PARKED, reasons=()), NEVER_SEEN)
    assert step.park == Park(1, "transient failure")


def test_an_archived_contact_changes_nothing_but_history() -> None:
    """A skipped decision is recorded and leaves the contact's state exactly as it was."""
    before = state_after(Outcome.REJECTED, Outcome.PARKED)
    step = plan(decision("1", Outcome.SKIPPED), before)
    assert step.record
    assert (step.resolution, step.park, step.unpark, step.ledger) == (None, None, False, None)
    assert step.after == before
