"""The reviewers' workflow in the store: status changes, their audit entries, bulk changes on a
filter, what the next pass judges again, counts and users, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from crmbridge.model import Cursor, Outcome, Reason, RejectStage
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.review import Action, ReviewChange
from tests.decisions import decision

STREAM = "hubspot.contacts"


def _reject(store: StateStore, contact: str, **changes: object) -> int:
    store.commit_page(STREAM, [decision(contact, Outcome.REJECTED, **changes)], Cursor(1, 1))
    [record] = store.rejects(RejectFilter(contact_id=contact, include_resolved=True))
    return record.id


def _status(store: StateStore, reject_id: int) -> str:
    record = store.reject(reject_id)
    assert record is not None
    return record.status


@pytest.mark.parametrize(
    ("action", "assignee", "to_status"),
    [
        (Action.APPROVE, None, "excepted"),
        (Action.DISMISS, None, "dismissed"),
        (Action.ESCALATE, "sales-ops", "escalated"),
    ],
)
def test_each_change_moves_the_status_and_writes_its_audit_entry(
    store: StateStore, action: Action, assignee: str | None, to_status: str
) -> None:
    """approve, dismiss and escalate move an open reject on, with who, when, from→to, note."""
    reject_id = _reject(store, "1")
    [result] = store.change_review(
        [reject_id], ReviewChange(action, "ana", note="called them", assignee=assignee)
    )
    assert (result.done, result.from_status, result.to_status) == (True, "open", to_status)
    record = store.reject(reject_id)
    assert record is not None
    assert (record.status, record.assignee) == (to_status, assignee)
    [entry] = store.audit_trail(reject_id)
    assert (entry.actor, entry.action, entry.from_status, entry.to_status, entry.note) == (
        "ana",
        action.value,
        "open",
        to_status,
        "called them",
    )
    assert entry.assignee == assignee
    assert entry.at == record.status_changed_at


def test_reopen_brings_a_reject_back_to_the_queue(store: StateStore) -> None:
    """A dismissed reject reopened is open again, with both changes in its trail."""
    reject_id = _reject(store, "1")
    store.change_review([reject_id], ReviewChange(Action.DISMISS, "ana", note="spam"))
    assert store.count_rejects(RejectFilter()) == 0
    [result] = store.change_review([reject_id], ReviewChange(Action.REOPEN, "bo"))
    assert result.done
    assert _status(store, reject_id) == "open"
    assert store.count_rejects(RejectFilter()) == 1
    trail = store.audit_trail(reject_id)
    assert [(e.actor, e.from_status, e.to_status) for e in trail] == [
        ("ana", "open", "dismissed"),
        ("bo", "dismissed", "open"),
    ]


def test_a_change_that_makes_no_sense_is_refused_and_writes_nothing(store: StateStore) -> None:
    """Approving an excepted reject, reopening an open one or an unknown id: refused, no entry."""
    reject_id = _reject(store, "1")
    store.change_review([reject_id], ReviewChange(Action.APPROVE, "ana"))
    again, reopen_open, unknown = (
        store.change_review([reject_id], ReviewChange(Action.APPROVE, "bo"))[0],
        store.change_review([_reject(store, "2")], ReviewChange(Action.REOPEN, "bo"))[0],
        store.change_review([999], ReviewChange(Action.DISMISS, "bo"))[0],
    )
    assert (again.done, again.message) == (False, "already excepted")
    assert (reopen_open.done, reopen_open.message) == (False, "already open")
    assert (unknown.done, unknown.message) == (False, "no reject with this id")
    assert len(store.audit_trail(reject_id)) == 1


def test_a_resolved_reject_cannot_be_approved(store: StateStore) -> None:
    """Once the lead synced, its old reject is resolved and approving it is refused."""
    reject_id = _reject(store, "1")
    store.commit_page(STREAM, [decision("1", Outcome.CREATED, modified_at_ms=2_000)], None)
    [result] = store.change_review([reject_id], ReviewChange(Action.APPROVE, "ana"))
    assert not result.done
    assert "already resolved" in result.message


def test_salesforce_refusals_and_mapping_problems_cannot_be_excepted(store: StateStore) -> None:
    """An exception overrides the rules only: a duplicate or an unmappable lead is refused."""
    duplicate = _reject(
        store,
        "1",
        stage=RejectStage.SALESFORCE,
        reasons=(Reason("salesforce.DUPLICATES_DETECTED", "dup", code="DUPLICATES_DETECTED"),),
    )
    unmappable = _reject(
        store,
        "2",
        stage=RejectStage.MAPPING,
        reasons=(Reason("mapping.Company", "Company: required", code="REQUIRED"),),
    )
    results = store.change_review([duplicate, unmappable], ReviewChange(Action.APPROVE, "ana"))
    assert [r.done for r in results] == [False, False]
    assert "DUPLICATES_DETECTED" in results[0].message
    assert "mapping.Company" in results[1].message


def test_escalate_needs_someone_to_escalate_to(store: StateStore) -> None:
    """An escalation without a person or team is refused."""
    reject_id = _reject(store, "1")
    [result] = store.change_review([reject_id], ReviewChange(Action.ESCALATE, "ana"))
    assert not result.done
    assert "--to" in result.message


def test_bulk_change_on_a_filter(store: StateStore) -> None:
    """The ids a filter selects are changed together; one audit entry each."""
    budget = [_reject(store, str(n)) for n in range(1, 4)]
    need = _reject(
        store, "9", reasons=(Reason("need", "need: empty", code="RULE"),), lead_source="ADS"
    )
    ids = store.reject_ids(RejectFilter(criterion="budget"))
    assert sorted(ids) == sorted(budget)
    results = store.change_review(ids, ReviewChange(Action.DISMISS, "ana", note="no budget"))
    assert all(r.done for r in results)
    assert store.reject_ids(RejectFilter()) == [need]
    assert store.reject_ids(RejectFilter(statuses=("dismissed",))) == sorted(budget, reverse=True)
    assert all(len(store.audit_trail(i)) == 1 for i in budget)


def test_filters_by_lead_source_tier_text_and_dates(store: StateStore) -> None:
    """Lead source, tier, free text (any case, in values and reasons) and days filter."""
    a = _reject(store, "1", lead_source="PAID_SEARCH", tier="A", inputs={"jobtitle": "Größe"})
    b = _reject(store, "2", lead_source="ORGANIC_SEARCH", tier="B")
    assert store.reject_ids(RejectFilter(lead_source="PAID_SEARCH")) == [a]
    assert store.reject_ids(RejectFilter(tier="B")) == [b]
    assert store.reject_ids(RejectFilter(text="größe")) == [a]
    assert store.reject_ids(RejectFilter(text="BUDGET: 30000")) == [b, a]
    assert store.reject_ids(RejectFilter(text="2@EXAMPLE")) == [b]
    assert store.reject_ids(RejectFilter(text="100%")) == []
    assert store.reject_ids(RejectFilter(since="2000-01-01", until="2999-12-31")) == [b, a]
    assert store.reject_ids(RejectFilter(until="2000-01-01")) == []


def test_a_later_qualification_resolves_an_escalated_reject(store: StateStore) -> None:
    """The contact syncs later: its escalated reject is resolved by crmbridge, with an entry."""
    reject_id = _reject(store, "1")
    store.change_review([reject_id], ReviewChange(Action.ESCALATE, "ana", assignee="sales"))
    store.commit_page(STREAM, [decision("1", Outcome.CREATED, modified_at_ms=2_000)], None)
    record = store.reject(reject_id)
    assert record is not None
    assert (record.status, record.resolution) == ("resolved", "synced later")
    last = store.audit_trail(reject_id)[-1]
    assert (last.actor, last.from_status, last.to_status) == ("crmbridge", "escalated", "resolved")


def test_an_approved_reject_is_due_with_its_approval(store: StateStore) -> None:
    """An excepted reject is due on the next pass with who approved it; syncing resolves it."""
    reject_id = _reject(store, "1")
    _reject(store, "2")
    store.change_review([reject_id], ReviewChange(Action.APPROVE, "ana", note="met them"))
    [due] = store.due_rejects(10)
    assert due.reject_id == reject_id
    assert due.exception is not None
    assert (due.exception["approved_by"], due.exception["note"]) == ("ana", "met them")
    synced = decision("1", Outcome.CREATED, modified_at_ms=2_000, exception=due.exception)
    store.commit_page(STREAM, [synced], None)
    assert store.due_rejects(10) == []
    record = store.reject(reject_id)
    assert record is not None
    assert (record.status, record.resolution) == ("resolved", "synced as exception")
    assert store.decisions_of("1")[-1].exception == due.exception


def test_a_replay_mark_makes_a_reject_due_until_unmarked(store: StateStore) -> None:
    """A reject marked by a replay is due (without an exception) until unmarked."""
    reject_id = _reject(store, "1")
    [result] = store.change_review([reject_id], ReviewChange(Action.REPLAY, "ana"))
    assert (result.done, result.to_status) == (True, "open")
    [due] = store.due_rejects(10)
    assert (due.reject_id, due.exception) == (reject_id, None)
    store.unmark_requeued([reject_id])
    assert store.due_rejects(10) == []


def test_decision_counts_and_source_quality(store: StateStore) -> None:
    """Counts by outcome, stage, tier, source and reason; source quality from latest decisions."""
    store.commit_page(
        STREAM,
        [
            decision("1", Outcome.CREATED, lead_source="ADS", tier="A"),
            decision("2", Outcome.REJECTED, lead_source="ADS"),
            decision("3", Outcome.REJECTED, lead_source="SEO"),
            decision(
                "4", Outcome.CREATED, lead_source="SEO", qualified=False, exception={"a": "b"}
            ),
        ],
        Cursor(1, 1),
    )
    counts = store.decision_counts("2000-01-01", "2999-01-01")
    by = {(c.outcome, c.lead_source, c.exception): c.count for c in counts}
    assert by == {
        ("created", "ADS", False): 1,
        ("rejected", "ADS", False): 1,
        ("rejected", "SEO", False): 1,
        ("created", "SEO", True): 1,
    }
    reasons = store.decision_counts("2000-01-01", "2999-01-01", by_reason=True)
    assert sum(c.count for c in reasons if c.criterion == "budget") == 2
    quality = {q.lead_source: (q.contacts, q.qualified) for q in store.source_quality()}
    assert quality == {"ADS": (2, 1), "SEO": (2, 0)}


def test_users_are_added_changed_and_removed(store: StateStore) -> None:
    """A user is added once, changed while it exists, removed once."""
    assert store.save_user("ana", "reviewer", "h1", new=True)
    assert not store.save_user("ana", "admin", "h2", new=True)
    assert not store.save_user("bo", "admin", "h2", new=False)
    assert store.save_user("ana", "admin", "h3", new=False)
    user = store.user("ana")
    assert user is not None
    assert (user.role, user.password_hash) == ("admin", "h3")
    assert [u.name for u in store.users()] == ["ana"]
    assert store.remove_user("ana")
    assert not store.remove_user("ana")
    assert store.user("ana") is None
