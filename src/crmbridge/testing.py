"""Test helpers shipped with the package: fakes for the source and sink ports.

Prefer these (or the simulators in ``crmbridge.sandbox``) to mocks: they keep the contracts
the real adapters keep (cursor order, one result per record, errors as data).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from crmbridge.errors import RequestRejectedError
from crmbridge.model import (
    Cursor,
    MappedLead,
    ObjectSchema,
    PushResult,
    RecordError,
    SourceContact,
)
from crmbridge.ports import Page


class FakeLeadSource:
    """A ``LeadSource`` over a list of contacts, paged in cursor order like HubSpotSource."""

    def __init__(self, contacts: Iterable[SourceContact] = (), *, page_size: int = 200) -> None:
        self.contacts: dict[str, SourceContact] = {c.id: c for c in contacts}
        self.page_size = page_size
        self.calls = 0

    def put(self, contact: SourceContact) -> None:
        self.contacts[contact.id] = contact

    def pull(self, since: Cursor, until_ms: int, properties: frozenset[str]) -> Iterator[Page]:
        del properties
        rows = sorted(
            (
                c
                for c in self.contacts.values()
                if not since.covers(c) and c.modified_at_ms <= until_ms and not c.archived
            ),
            key=lambda c: (c.modified_at_ms, c.numeric_id),
        )
        for start in range(0, len(rows), self.page_size):
            self.calls += 1
            page = rows[start : start + self.page_size]
            yield Page(page, Cursor(page[-1].modified_at_ms, page[-1].numeric_id))
        if not rows:
            self.calls += 1


@dataclass
class FakeLeadSink:
    """A ``LeadSink`` holding leads in memory, keyed by external id, with injectable failures.

    ``row_errors[contact_id]`` is a list of errors served one per upsert of that contact;
    ``refuse_request_with`` makes any batch holding that contact fail as a whole request."""

    schema: ObjectSchema
    external_id_field: str = "HubSpot_Contact_Id__c"
    leads: dict[str, dict[str, object]] = field(default_factory=dict)
    row_errors: dict[str, list[RecordError]] = field(default_factory=dict)
    transient_codes: frozenset[str] = frozenset({"UNABLE_TO_LOCK_ROW"})
    refuse_request_with: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    batches: list[int] = field(default_factory=list)

    def describe(self) -> ObjectSchema:
        self.calls += 1
        return self.schema

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        self.calls += 1
        self.batches.append(len(leads))
        for lead in leads:
            code = self.refuse_request_with.get(lead.contact_id)
            if code:
                raise RequestRejectedError("salesforce", f"refused: {code}", status=400, code=code)
        results = []
        for lead in leads:
            queued = self.row_errors.get(lead.contact_id)
            if queued:
                error = queued.pop(0)
                results.append(
                    PushResult(
                        lead.contact_id,
                        success=False,
                        errors=(error,),
                        transient=error.code in self.transient_codes,
                    )
                )
                continue
            key = str(lead.fields[self.external_id_field])
            created = key not in self.leads
            record = self.leads.setdefault(key, {"Id": f"00Q{len(self.leads):015d}"})
            record.update(lead.fields)
            results.append(
                PushResult(
                    lead.contact_id, success=True, salesforce_id=str(record["Id"]), created=created
                )
            )
        return results
