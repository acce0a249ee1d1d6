"""The roles the sync pipeline talks to. Adapters implement them; tests use fakes.

Only ``sources/hubspot.py`` and ``sinks/salesforce.py`` touch the client libraries; the pipeline
sees these protocols and the values in ``model.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from crmbridge.model import Cursor, Decision, MappedLead, ObjectSchema, PushResult, SourceContact


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


@dataclass(frozen=True)
class LedgerEntry:
    """What crmbridge last did for one HubSpot contact."""

    contact_id: str
    status: str  # synced | rejected | parked
    modified_at_ms: int
    payload_hash: str | None
    salesforce_id: str | None
    rule_set_version: str | None


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


@dataclass(frozen=True)
class RejectFilter:
    include_resolved: bool = False
    stage: str | None = None
    criterion: str | None = None
    contact_id: str | None = None
    rule_set_version: str | None = None
    limit: int = 50
    offset: int = 0


class StateStore(Protocol):
    """Durable state: cursor, ledger, decisions (the reject log is a view of them), parked leads.

    ``commit_page`` is the only write of a pass: it records outcomes and then the cursor in one
    transaction, so a crash leaves either both or neither."""

    def get_cursor(self, stream: str) -> Cursor: ...

    def ledger(self, contact_ids: Sequence[str]) -> dict[str, LedgerEntry]: ...

    def commit_page(
        self, stream: str, decisions: Sequence[Decision], cursor: Cursor | None
    ) -> None: ...

    def parked(self, limit: int) -> list[ParkedLead]: ...

    def rejects(self, query: RejectFilter) -> list[RejectRecord]: ...

    def count_rejects(self, query: RejectFilter) -> int: ...

    def reject(self, reject_id: int) -> RejectRecord | None: ...

    def close(self) -> None: ...
