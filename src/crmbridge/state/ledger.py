"""The ledger's rules: what one decision changes in the stored state of its contact.

Pure functions, no I/O. Every state store asks ``plan`` what to write for each decision of a
page, in order, and only persists the answer, so the rules are the same on every backend:

- An identical re-judgement (same fingerprint: HubSpot moved ``lastmodifieddate`` without
  changing what was judged) of a reject or an unchanged lead adds no decision row; only the
  ledger's ``modified_at_ms`` moves. A push is always recorded.
- A decision resolves the contact's earlier open reject: "synced later" when it settles the
  contact in Salesforce (created, updated, unchanged; "synced as exception" when a reviewer
  let it through despite the rules), "superseded" when it rejects or parks it
  again. So a contact has at most one open reject, and only while its ledger status is
  "rejected": no other contact needs the update. An archived contact (skipped) changes nothing
  but its own decision row.
- A parked lead counts its attempts (1, 2, … one per pass); any other outcome unparks it.
- A reject or a park does not undo what Salesforce already holds: the ledger keeps the last
  Salesforce id and the hash of the payload pushed last, so an unchanged lead is still
  recognised later. Only a push replaces the hash.
- The ledger keeps the stage the lead is at in Salesforce (``lead_stage``): a decision that
  settles the lead there (even a repeated one) sets it; a reject or a park keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from crmbridge.model import Decision, Outcome
from crmbridge.ports import LedgerEntry
from crmbridge.state.codec import fingerprint

SYNCED = "synced"
REJECTED = "rejected"
PARKED = "parked"

#: Resolutions of an earlier open reject.
SYNCED_LATER = "synced later"
SYNCED_AS_EXCEPTION = "synced as exception"
SUPERSEDED = "superseded"

#: Outcomes whose identical repetition is not stored again (a push always is).
DEDUPED = frozenset({Outcome.REJECTED, Outcome.UNCHANGED})

#: Outcomes that settle a contact in Salesforce: earlier open rejects are "synced later".
SETTLING = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})

_STATUS = {Outcome.PARKED: PARKED, Outcome.REJECTED: REJECTED}


@dataclass(frozen=True)
class ContactState:
    """What a store holds about one contact before a decision (all empty: never seen)."""

    ledger: LedgerEntry | None = None
    fingerprint: str | None = None
    parked_attempts: int = 0


@dataclass(frozen=True)
class Park:
    """Park (or re-park) the lead, pointing at the decision being recorded."""

    attempts: int
    last_error: str


@dataclass(frozen=True)
class WritePlan:
    """What a store writes for one decision, in this order, inside the page's transaction:
    resolve earlier open rejects, record the decision, park or unpark, upsert the ledger."""

    record: bool
    resolution: str | None
    park: Park | None
    unpark: bool
    ledger: LedgerEntry | None
    fingerprint: str | None
    after: ContactState


def plan(decision: Decision, before: ContactState) -> WritePlan:
    """The writes ``decision`` calls for, given the contact's stored state ``before``.

    Raises ``ValueError`` for a ``TO_PUSH`` decision: only a push's outcome is recorded."""
    if decision.outcome is Outcome.TO_PUSH:
        raise ValueError(f"contact {decision.contact_id}: a decision to push is not an outcome")
    if decision.outcome is Outcome.SKIPPED:
        # Archived in HubSpot: kept as history, but it neither settles nor undoes anything.
        return WritePlan(True, None, None, False, None, None, before)
    verdict = fingerprint(decision)
    previous = before.ledger
    settles = decision.outcome in SETTLING
    if decision.outcome in DEDUPED and previous is not None and before.fingerprint == verdict:
        moved = replace(
            previous,
            modified_at_ms=decision.modified_at_ms,
            lead_stage=decision.lead_stage if settles else previous.lead_stage,
        )
        return WritePlan(False, None, None, False, moved, verdict, replace(before, ledger=moved))
    status = _STATUS.get(decision.outcome, SYNCED)
    payload_hash = decision.payload_hash if status == SYNCED else None
    salesforce_id = decision.salesforce_id
    lead_stage = decision.lead_stage if settles else None
    if previous is not None:
        if status != SYNCED:
            payload_hash = previous.payload_hash
        salesforce_id = salesforce_id or previous.salesforce_id
        lead_stage = lead_stage if settles else previous.lead_stage
    entry = LedgerEntry(
        contact_id=decision.contact_id,
        status=status,
        modified_at_ms=decision.modified_at_ms,
        payload_hash=payload_hash,
        salesforce_id=salesforce_id,
        rule_set_version=decision.rule_set_version,
        lead_stage=lead_stage,
    )
    park = None
    attempts = 0
    if decision.outcome is Outcome.PARKED:
        attempts = before.parked_attempts + 1
        park = Park(attempts, parked_error(decision))
    resolution = None
    if previous is not None and previous.status == REJECTED:
        synced = SYNCED_AS_EXCEPTION if decision.exception else SYNCED_LATER
        resolution = synced if settles else SUPERSEDED
    return WritePlan(
        record=True,
        resolution=resolution,
        park=park,
        unpark=park is None and before.parked_attempts > 0,
        ledger=entry,
        fingerprint=verdict,
        after=ContactState(entry, verdict, attempts),
    )


def parked_error(decision: Decision) -> str:
    """The error a parked lead shows: its reasons' messages, or a generic word."""
    return "; ".join(r.message for r in decision.reasons) or "transient failure"
