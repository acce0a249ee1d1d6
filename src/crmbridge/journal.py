"""The push journal: a crash between a push and its page's commit neither loses the leads nor
pushes them twice.

A page's outcomes and cursor are committed only after its leads were pushed. A runner killed
in between (SIGKILL, a lost host) leaves leads that Salesforce has and the ledger does not; the
next runner re-pulls them from the unmoved cursor. Upsert by external id makes a second push
harmless to the data, but it is a second write (Salesforce runs its triggers and assignment
again, the lead's LastModifiedDate moves) and its answer says "updated" for a lead the dead
runner created. So every push is journalled in the state store:

1. before the call, one row per lead: the payload's hash and whether the ledger already knew a
   Salesforce record for it (``had_lead``);
2. after the call, Salesforce's answer for each lead that was written (id, created); a lead
   Salesforce refused, or a request refused whole, leaves no row (nothing was written);
3. the page's commit removes its leads' rows.

A runner about to push a lead whose row is still there (:func:`plan_push`) and whose payload
is unchanged:

- reuses the recorded answer when there is one: no call at all;
- otherwise (the runner died during the call: it may or may not have reached Salesforce) reads
  the lead's current values in one query per batch and, when Salesforce already holds every
  value of the payload (:func:`already_there`), takes that as the answer (created unless the
  ledger knew a record before); else it pushes.

A lead pushed again (its payload changed meanwhile, or Salesforce did not hold it as sent) is
recorded as created when the ledger knew no record of it before the earlier push: Salesforce
answers "updated" because the earlier push created it, and the ledger records each creation
exactly once.

Every comparison that cannot be made with certainty pushes: the journal may save a write,
never lose one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from crmbridge.errors import RequestRejectedError
from crmbridge.judgement import payload_hash
from crmbridge.model import FieldValue, MappedLead, PushResult
from crmbridge.ports import ForwardingSink, LeadSink

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Intent:
    """A journalled push of one lead: what was sent, and Salesforce's answer if it came."""

    contact_id: str
    payload_hash: str
    had_lead: bool
    salesforce_id: str | None = None
    created: bool | None = None

    @property
    def answered(self) -> bool:
        return self.salesforce_id is not None


@dataclass
class PushPlan:
    """Which leads of a batch are answered from the journal, checked first, or pushed."""

    answered: dict[str, PushResult] = field(default_factory=dict)
    check: list[MappedLead] = field(default_factory=list)
    push: list[MappedLead] = field(default_factory=list)


def plan_push(leads: Sequence[MappedLead], earlier: Mapping[str, Intent]) -> PushPlan:
    """Split a batch by what the journal says of each lead (module docstring)."""
    plan = PushPlan()
    for lead in leads:
        intent = earlier.get(lead.contact_id)
        if intent is None or intent.payload_hash != payload_hash(lead.fields):
            plan.push.append(lead)
        elif intent.answered:
            plan.answered[lead.contact_id] = PushResult(
                lead.contact_id,
                success=True,
                salesforce_id=intent.salesforce_id,
                created=bool(intent.created),
            )
        else:
            plan.check.append(lead)
    return plan


def _created_by_earlier(result: PushResult, earlier: Mapping[str, Intent]) -> PushResult:
    """A lead with an uncommitted earlier push that the ledger knew no record of was created by
    that push (or by this one): Salesforce's "updated" then only means the earlier push
    arrived, and the ledger must still record the creation once."""
    intent = earlier.get(result.contact_id)
    if not result.success or result.created or intent is None or intent.had_lead:
        return result
    return replace(result, created=True)


def already_there(payload: Mapping[str, FieldValue], current: Mapping[str, object]) -> bool:
    """True when Salesforce's record holds every value of ``payload`` (numbers as numbers, an
    empty text as no value); anything it cannot compare counts as different."""
    return all(name in current and _same(value, current[name]) for name, value in payload.items())


def _same(sent: FieldValue, held: object) -> bool:
    if sent in (None, "") or held in (None, ""):
        return sent in (None, "") and held in (None, "")
    if isinstance(sent, bool) or isinstance(held, bool):
        return sent is held
    if isinstance(sent, int | float) and isinstance(held, int | float):
        return math.isclose(float(sent), float(held), rel_tol=0, abs_tol=1e-9)
    return isinstance(sent, str) and isinstance(held, str) and sent == held


class PushJournal(Protocol):
    """Where the journal is kept (the state store); writes are fenced by the lease."""

    def begin(self, hashes: Mapping[str, str]) -> dict[str, Intent]:
        """Journal a push of these leads (contact id → payload hash) and return the rows that
        were there before for them (left by an earlier push whose page was not committed). A
        row with the same hash is kept as it is, answer included."""
        ...

    def answered(self, results: Sequence[PushResult]) -> None:
        """Record Salesforce's answer: written leads keep their id and whether they were
        created; leads that were not written lose their row."""
        ...

    def close(self) -> None:
        """Release the journal's connections."""
        ...


class JournaledSink(ForwardingSink):
    """A ``LeadSink`` that journals every upsert and skips what an earlier, uncommitted push
    already wrote (module docstring)."""

    def __init__(self, inner: LeadSink, journal: PushJournal) -> None:
        super().__init__(inner)
        self.journal = journal
        self.recovered = 0  # leads answered from the journal or found in Salesforce

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        earlier = self.journal.begin({lead.contact_id: payload_hash(lead.fields) for lead in leads})
        plan = plan_push(leads, earlier)
        results = dict(plan.answered)
        found = self._found(plan.check, earlier) if plan.check else {}
        results.update(found)
        to_push = [lead for lead in plan.push + plan.check if lead.contact_id not in found]
        if to_push:
            try:
                pushed = self.inner.upsert(to_push)
            except RequestRejectedError:
                # Refused whole: nothing was written, so nothing is in flight.
                self.journal.answered(
                    [PushResult(lead.contact_id, success=False) for lead in to_push]
                )
                raise
            pushed = [_created_by_earlier(result, earlier) for result in pushed]
            self.journal.answered(pushed)
            results.update((result.contact_id, result) for result in pushed)
        if plan.answered or found:
            self.recovered += len(plan.answered) + len(found)
            log.info(
                "push_recovered",
                answered_from_journal=len(plan.answered),
                found_in_salesforce=len(found),
                hint="these leads were pushed by a runner that stopped before committing "
                "them; they were not pushed again",
            )
        return [results[lead.contact_id] for lead in leads]

    def _found(
        self, leads: Sequence[MappedLead], earlier: Mapping[str, Intent]
    ) -> dict[str, PushResult]:
        """The leads Salesforce already holds as they would be sent (one query)."""
        fields = sorted({name for lead in leads for name in lead.fields})
        current = self.inner.current_values([lead.contact_id for lead in leads], fields)
        found: dict[str, PushResult] = {}
        for lead in leads:
            record = current.get(lead.contact_id)
            if record is not None and already_there(lead.fields, record):
                found[lead.contact_id] = PushResult(
                    lead.contact_id,
                    success=True,
                    salesforce_id=str(record.get("Id")),
                    created=not earlier[lead.contact_id].had_lead,
                )
        self.journal.answered(list(found.values()))
        return found
