"""The store reads admins' tools use, on SQLite and PostgreSQL: the latest decision of every
contact (what a what-if replays), the last describe, leads synced with flags, and what the
policies add to a decision."""

from __future__ import annotations

import pytest

from crmbridge.model import (
    Cursor,
    Flag,
    FlagAction,
    MoveVerdict,
    ObjectSchema,
    Outcome,
    StageMove,
)
from crmbridge.ports import StateStore
from crmbridge.testing import reference_lead_schema
from tests.decisions import decision

STREAM = "hubspot.contacts"
FLAG = Flag(
    "Email", "INVALID_EMAIL", 'Email: "a@" is not a valid e-mail address', FlagAction.OMITTED
)


def test_what_the_policies_add_round_trips(store: StateStore) -> None:
    """Tier, score, stage, transition and flags are stored and read back exactly."""
    move = StageMove("MQL", "SQL", "SQL", MoveVerdict.FORWARD)
    made = decision(
        "1", Outcome.CREATED, tier="Hot", score=85, lead_stage="SQL", transition=move, flags=(FLAG,)
    )
    store.commit_page(STREAM, [made], Cursor(1, 1))
    [stored] = store.decisions_of("1")
    assert stored == made
    assert store.ledger(["1"])["1"].lead_stage == "SQL"


def test_a_reject_keeps_the_stage_the_lead_is_at(store: StateStore) -> None:
    """The ledger's stage is what Salesforce holds: a later reject does not change it."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED, lead_stage="SQL")], None)
    store.commit_page(
        STREAM, [decision("1", Outcome.REJECTED, modified_at_ms=2_000, lead_stage="SQL")], None
    )
    assert store.ledger(["1"])["1"].lead_stage == "SQL"


def test_latest_decisions_stream_the_last_word_on_every_contact(store: StateStore) -> None:
    """One entry per contact in the ledger, its newest decision, in chunks, in id order."""
    store.commit_page(
        STREAM, [decision(str(n), Outcome.REJECTED, inputs={"n": str(n)}) for n in range(7)], None
    )
    store.commit_page(
        STREAM,
        [decision("3", Outcome.CREATED, modified_at_ms=2_000, inputs={"n": "3 again"})],
        None,
    )
    chunks = list(store.latest_decisions(chunk_size=3))
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    latest = {item.decision.contact_id: item for chunk in chunks for item in chunk}
    assert sorted(latest) == [str(n) for n in range(7)]
    three = latest["3"]
    assert (three.decision.outcome, three.decision.inputs) == (Outcome.CREATED, {"n": "3 again"})
    assert three.ledger.status == "synced"
    assert three.decision.criteria == ()  # not read: a replay judges again


def test_an_archived_contacts_last_word_is_not_replayed(store: StateStore) -> None:
    """A contact archived after a sync keeps its last real decision as the latest."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.SKIPPED, modified_at_ms=2_000)], None)
    [[only]] = list(store.latest_decisions())
    assert only.decision.outcome is Outcome.CREATED


def test_the_last_describe_is_kept_per_object(store: StateStore) -> None:
    """save_schema replaces the object's describe; latest_schema reads it back exactly."""
    assert store.latest_schema("Lead") is None
    store.save_schema(ObjectSchema("Lead", {}))
    schema = reference_lead_schema()
    store.save_schema(schema)
    stored = store.latest_schema("Lead")
    assert stored is not None
    assert stored.schema == schema
    assert stored.fetched_at.endswith("Z")


@pytest.mark.parametrize("outcome", [Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED])
def test_a_lead_synced_with_flags_is_listed(store: StateStore, outcome: Outcome) -> None:
    """A settled decision with flags is listed; a reject with flags is not (it did not sync)."""
    store.commit_page(
        STREAM,
        [decision("1", outcome, flags=(FLAG,)), decision("2", Outcome.REJECTED, flags=(FLAG,))],
        None,
    )
    [record] = store.flagged(limit=10)
    assert (record.decision.contact_id, record.decision.flags) == ("1", (FLAG,))
    assert store.count_flagged() == 1


def test_a_fixed_lead_leaves_the_flagged_list(store: StateStore) -> None:
    """Once the contact is synced again without flags, it is no longer listed."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED, flags=(FLAG,))], None)
    store.commit_page(STREAM, [decision("1", Outcome.UPDATED, modified_at_ms=2_000)], None)
    assert store.flagged(limit=10) == []
    assert store.count_flagged() == 0
