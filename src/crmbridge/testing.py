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
    FieldSpec,
    MappedLead,
    ObjectSchema,
    PicklistValue,
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
    #: How many ids each ``current_values`` query asked about, in order.
    queries: list[int] = field(default_factory=list)

    def start_pass(self) -> None:
        """Nothing to refresh: the fake has no budget."""

    def describe(self) -> ObjectSchema:
        self.calls += 1
        return self.schema

    def current_values(
        self, external_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        """The stored leads among ``external_ids`` with ``fields`` (one call, like a query)."""
        self.calls += 1
        self.queries.append(len(external_ids))
        return {
            key: {"Id": record["Id"], **{name: record.get(name) for name in fields}}
            for key in external_ids
            if (record := self.leads.get(key)) is not None
        }

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


# -- the reference org's Lead describe ------------------------------------------------------
# (docs/salesforce-api.md#describe, docs/settings.md#reference-org)
INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit", "Other",
    "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities",
)  # fmt: skip
STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


def picklist(name: str, values: tuple[str, ...], *, required: bool = False) -> FieldSpec:
    """A restricted picklist whose first value is the default; ``required`` = not nillable."""
    options = tuple(PicklistValue(v, v, default=(i == 0)) for i, v in enumerate(values))
    return FieldSpec(
        name,
        "picklist",
        length=255,
        nillable=not required,
        defaulted_on_create=required,
        restricted_picklist=True,
        picklist_values=options,
    )


def reference_lead_schema(*replaced: FieldSpec) -> ObjectSchema:
    """The reference org's Lead describe (docs/salesforce-api.md#describe,
    docs/settings.md#reference-org), with overrides."""
    fields = [
        FieldSpec("LastName", "string", length=80, nillable=False),
        FieldSpec("FirstName", "string", length=40),
        FieldSpec("Company", "string", length=255, nillable=False),
        FieldSpec("Email", "email", length=80),
        FieldSpec("Title", "string", length=128),
        FieldSpec("Phone", "phone", length=40),
        FieldSpec("Description", "textarea", length=32000),
        FieldSpec("City", "string", length=40),
        FieldSpec("PostalCode", "string", length=20),
        picklist("LeadSource", LEAD_SOURCES),
        picklist("Status", STATUSES, required=True),
        picklist("Rating", ("Hot", "Warm", "Cold")),
        picklist("Industry", INDUSTRIES),
        FieldSpec("NumberOfEmployees", "int"),  # describe gives digits (8), not precision
        FieldSpec("AnnualRevenue", "currency", precision=18, scale=0),
        FieldSpec(
            "IsConverted",
            "boolean",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
        FieldSpec("HubSpot_Contact_Id__c", "string", length=64, external_id=True, unique=True),
        FieldSpec("Budget__c", "currency", precision=16, scale=2),
        FieldSpec("Timeline_Days__c", "double", precision=18, scale=0),
        FieldSpec("Pain_Point__c", "string", length=255),
        FieldSpec("CRMBridge_Exception__c", "string", length=255),
    ]
    by_name = {f.name: f for f in fields}
    by_name.update({f.name: f for f in replaced})
    return ObjectSchema("Lead", by_name)
