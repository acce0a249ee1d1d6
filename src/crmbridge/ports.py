"""The roles the sync pipeline talks to. Adapters implement them; tests use fakes.

Only ``sources/hubspot.py`` and ``sinks/salesforce.py`` touch the client libraries; the pipeline
sees these protocols and the values in ``model.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from crmbridge.model import (
    Cursor,
    Decision,
    MappedLead,
    ObjectSchema,
    PushResult,
    SourceContact,
)
from crmbridge.observe import PassRecord
from crmbridge.review import AuditEntry, ReviewChange, ReviewResult


@dataclass(frozen=True)
class Page:
    """Contacts in cursor order; ``cursor`` is where the stream stands once they are done."""

    contacts: Sequence[SourceContact]
    cursor: Cursor


class LeadSource(Protocol):
    """Where leads come from (HubSpot)."""

    calls: int

    def pull(self, since: Cursor, until_ms: int, properties: frozenset[str]) -> Iterator[Page]:
        """Yield every contact modified after ``since`` and at or before ``until_ms``, in pages.

        Each page's cursor covers every contact of that page and of the pages before it."""
        ...


class LeadSink(Protocol):
    """Where qualified leads go (Salesforce)."""

    calls: int

    def start_pass(self) -> None:
        """Refresh what must be current at the start of a pass (e.g. the API budget)."""
        ...

    def describe(self) -> ObjectSchema:
        """The target object's fields (one API call)."""
        ...

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        """Upsert by external id; one result per lead, in order. Record errors are results,
        not exceptions; request-level failures raise from ``crmbridge.errors``."""
        ...

    def current_values(
        self, external_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        """The existing records among ``external_ids``, by external id, with ``fields`` as the
        target holds them: one query (more only past the query-length limits). An id missing
        from the answer has no record. Raises like ``upsert`` for request-level failures."""
        ...


class ForwardingSink:
    """A ``LeadSink`` that hands every call to ``inner``; sinks that add one thing to a push
    (a journal, a lease guard) subclass it and override only ``upsert``."""

    def __init__(self, inner: LeadSink) -> None:
        self.inner = inner

    @property
    def calls(self) -> int:
        return self.inner.calls

    @calls.setter
    def calls(self, value: int) -> None:
        self.inner.calls = value

    def start_pass(self) -> None:
        self.inner.start_pass()

    def describe(self) -> ObjectSchema:
        return self.inner.describe()

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        return self.inner.upsert(leads)

    def current_values(
        self, external_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        return self.inner.current_values(external_ids, fields)


@dataclass(frozen=True)
class LedgerEntry:
    """What crmbridge last did for one HubSpot contact."""

    contact_id: str
    status: str  # synced | rejected | parked
    modified_at_ms: int
    payload_hash: str | None
    salesforce_id: str | None
    rule_set_version: str | None
    #: The stage (``stages.yaml`` name) last pushed to Salesforce; ``None``: not known.
    lead_stage: str | None = None


@dataclass(frozen=True)
class ParkedLead:
    """A qualified lead whose push failed transiently; retried at the start of the next pass."""

    decision: Decision
    attempts: int
    last_error: str


@dataclass(frozen=True)
class RejectRecord:
    """One entry of the reject log (a stored rejected Decision), as reviewers see it."""

    id: int
    decided_at: str
    decision: Decision
    resolved_at: str | None = None
    resolution: str | None = None
    #: The review status (``crmbridge.review.Status``), since when, and to whom it is escalated.
    status: str = "open"
    status_changed_at: str | None = None
    assignee: str | None = None
    #: Marked by ``rejects replay --apply``: judged again on the next pass.
    requeued: bool = False


@dataclass(frozen=True)
class LatestDecision:
    """A contact's latest recorded decision and its ledger entry (what a replay starts from).

    The decision's ``criteria``, ``payload``, ``transition`` and ``flags`` are not read (a
    replay judges again)."""

    decision: Decision
    ledger: LedgerEntry


@dataclass(frozen=True)
class DecisionRecord:
    """One stored decision with its id and when it was made (listings other than rejects)."""

    id: int
    decided_at: str
    decision: Decision


@dataclass(frozen=True)
class StoredSchema:
    """The Salesforce describe a pass fetched last, kept so reports can map without a call."""

    schema: ObjectSchema
    fetched_at: str


@dataclass(frozen=True)
class RejectFilter:
    """Which rejects to list; every filter set must hold. ``statuses``: those review statuses;
    unset, the queue (open and escalated), or every status with ``include_resolved``.
    ``since`` and ``until`` are days (``YYYY-MM-DD``, UTC, both included); ``text`` is found
    (ignoring case) in the contact id, e-mail, reasons or HubSpot values."""

    include_resolved: bool = False
    stage: str | None = None
    criterion: str | None = None
    code: str | None = None
    contact_id: str | None = None
    rule_set_version: str | None = None
    statuses: tuple[str, ...] | None = None
    lead_source: str | None = None
    tier: str | None = None
    assignee: str | None = None
    since: str | None = None
    until: str | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class DueReject:
    """A reject the next pass judges again from its stored values: approved by a reviewer
    (``exception`` says who, when and why) or marked by a replay (``exception`` is ``None``)."""

    reject_id: int
    decision: Decision
    exception: dict[str, str] | None


@dataclass(frozen=True)
class DecisionCount:
    """How many decisions share these values (one row of :meth:`StateStore.decision_counts`).
    ``criterion`` and ``code`` are set when counting reasons."""

    day: str
    outcome: str
    stage: str | None
    tier: str | None
    lead_source: str | None
    exception: bool
    count: int
    criterion: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class SourceQuality:
    """Contacts of one lead source by their latest decision: how many, how many qualified."""

    lead_source: str | None
    contacts: int
    qualified: int


@dataclass(frozen=True)
class User:
    """A console account: its name, role (viewer, reviewer, admin) and argon2 hash."""

    name: str
    role: str
    password_hash: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class StoreIdentity:
    """Which state store this is: made once by ``crmbridge state init``, kept for its life.

    ``created_url`` is where it was made; ``url`` is where it is open now. They differ when
    the store was moved, copied or restored elsewhere (crmbridge warns, then carries on)."""

    store_id: str
    pipeline: str
    created_at: str
    created_url: str
    url: str

    @property
    def moved(self) -> bool:
        return self.created_url != self.url


class StateStore(Protocol):
    """Durable state of one pipeline: cursor, ledger, decisions (the reject log is a view of
    them), parked leads. Every store applies the ledger rules of ``crmbridge.state.ledger``.

    ``commit_page`` is the only write of a pass: it records outcomes and then the cursor in one
    transaction, so a crash leaves either both or neither. Any method raises
    ``StateStoreError`` when the store cannot be used (unwritable, corrupted) and
    ``StateStoreUnavailableError`` (retryable) when it stops answering for now."""

    def identity(self) -> StoreIdentity:
        """The store's identity (its id, pipeline, when and where it was made, where it is)."""
        ...

    def get_cursor(self, stream: str) -> Cursor:
        """Where ``stream`` stands; an empty ``Cursor()`` before its first committed page."""
        ...

    def ledger(self, contact_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """The ledger entries of those contacts that have one, by contact id."""
        ...

    def commit_page(
        self, stream: str, decisions: Sequence[Decision], cursor: Cursor | None
    ) -> None:
        """Record ``decisions`` in order by the ledger rules, then move ``stream`` to
        ``cursor`` (unless ``None``), in one transaction: on any error nothing is kept."""
        ...

    def parked(self, limit: int) -> list[ParkedLead]:
        """Up to ``limit`` parked leads, longest parked first, with their attempts so far."""
        ...

    def count_parked(self) -> int:
        """How many leads are parked."""
        ...

    def rejects(self, query: RejectFilter) -> list[RejectRecord]:
        """The rejects ``query`` selects, newest first, one page of ``limit`` from ``offset``."""
        ...

    def count_rejects(self, query: RejectFilter) -> int:
        """How many rejects ``query`` selects (``limit`` and ``offset`` aside)."""
        ...

    def reject(self, reject_id: int) -> RejectRecord | None:
        """One reject by id, open or resolved; ``None`` when no reject has that id."""
        ...

    def decisions_of(self, contact_id: str) -> list[Decision]:
        """Every decision recorded about one contact, oldest first (its history)."""
        ...

    def contacts_with_status(self, status: str, *, limit: int) -> list[str]:
        """Up to ``limit`` contact ids whose ledger status is ``status``, in id order."""
        ...

    def outcome_counts(self) -> dict[str, int]:
        """How many contacts the ledger holds in each status (synced / rejected / parked)."""
        ...

    def latest_decisions(self, *, chunk_size: int = 1000) -> Iterator[list[LatestDecision]]:
        """The latest recorded decision of every contact in the ledger (an archived contact's
        last word aside), with its ledger entry, in contact-id order, ``chunk_size`` contacts
        at a time (the chunks of :meth:`contact_ranges`). Reads only; each chunk is one short
        read, so a long replay holds no lock."""
        ...

    def contact_ranges(self, *, chunk_size: int = 1000) -> list[tuple[str, str]]:
        """The ledger's contact ids cut into consecutive ranges of ``chunk_size``: (first,
        last) of each, in order. Several readers can share a replay by range."""
        ...

    def latest_decisions_between(self, first: str, last: str) -> list[LatestDecision]:
        """:meth:`latest_decisions` for the contacts from ``first`` to ``last`` (inclusive)."""
        ...

    def save_schema(self, schema: ObjectSchema) -> None:
        """Keep ``schema`` as the latest describe of its object (replacing the one before)."""
        ...

    def latest_schema(self, object_name: str) -> StoredSchema | None:
        """The describe of ``object_name`` a pass kept last; ``None`` before the first."""
        ...

    def flagged(self, *, limit: int, offset: int = 0) -> list[DecisionRecord]:
        """Leads whose latest decision synced them with flags (values a reviewer should fix),
        newest first, one page of ``limit`` from ``offset``."""
        ...

    def count_flagged(self) -> int:
        """How many leads :meth:`flagged` lists in all."""
        ...

    # -- the reviewers' workflow ---------------------------------------------------------------
    def reject_ids(self, query: RejectFilter) -> list[int]:
        """The ids of every reject ``query`` selects (``limit`` and ``offset`` aside), newest
        first: bulk actions on a filter."""
        ...

    def change_review(self, reject_ids: Sequence[int], change: ReviewChange) -> list[ReviewResult]:
        """Apply ``change`` to each reject (in one transaction), where ``review.refusal``
        allows it, with an audit entry for each; one result per id, in order, refused ones with
        the reason (an unknown id is refused too)."""
        ...

    def audit_trail(self, reject_id: int) -> list[AuditEntry]:
        """Every status change of one reject, oldest first."""
        ...

    def audit_entries(self, since: str, until: str) -> list[AuditEntry]:
        """Every status change made from ``since`` to before ``until`` (ISO times), oldest first."""
        ...

    def due_rejects(self, limit: int) -> list[DueReject]:
        """Up to ``limit`` unresolved rejects approved (excepted) or marked by a replay, oldest
        first: what the next pass judges again from the stored values."""
        ...

    def unmark_requeued(self, reject_ids: Sequence[int]) -> None:
        """Clear the replay's mark of these rejects (they were judged again)."""
        ...

    def decision_counts(
        self, since: str, until: str, *, by_reason: bool = False
    ) -> list[DecisionCount]:
        """Decisions made from ``since`` to before ``until`` (ISO times), counted by day,
        outcome, stage, tier, lead source and exception (and each reason's criterion and code
        with ``by_reason``: a decision then counts once per reason)."""
        ...

    def source_quality(self) -> list[SourceQuality]:
        """Per lead source, the contacts whose latest decision judged them, and how many of
        those the rules qualified."""
        ...

    # -- console users -------------------------------------------------------------------------
    def users(self) -> list[User]:
        """Every console user, by name."""
        ...

    def user(self, name: str) -> User | None:
        """One console user; ``None`` when there is none of that name."""
        ...

    def save_user(self, name: str, role: str, password_hash: str, *, new: bool) -> bool:
        """Add a user (``new``) or replace an existing one's role and hash; False when ``new``
        and the name is taken, or not ``new`` and there is no such user."""
        ...

    def remove_user(self, name: str) -> bool:
        """Remove a user; False when there was none of that name."""
        ...

    def ping(self) -> None:
        """Run a trivial query; raises like any method when the store cannot answer now."""
        ...

    def pipelines(self) -> list[str]:
        """The names of every pipeline this store (database or file) holds, sorted."""
        ...

    def lease_holder(self) -> str | None:
        """Which replica holds this pipeline's lease (host, pid, token, last renewal), or that
        it expired; ``None`` when nobody ever held it."""
        ...

    def record_pass(self, record: PassRecord) -> None:
        """Keep one pass's result for this pipeline (only the newest few thousand are kept)."""
        ...

    def recent_passes(self, limit: int) -> list[PassRecord]:
        """Up to ``limit`` of this pipeline's kept pass results, newest first."""
        ...

    def close(self) -> None:
        """Release the store's connections; the store is not used afterwards."""
        ...
