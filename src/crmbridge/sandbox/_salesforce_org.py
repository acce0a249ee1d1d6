"""The Salesforce simulator's data: the in-memory Lead store of one org and its write rules.

Holds :class:`SalesforceOrg` (thread-safe, atomic per request through a copy-on-write transaction,
with indexes for unique, ``idLookup`` and duplicate-rule fields) and the per-row validation of
upserts and inserts: read-only and required fields, value checks, unique values, duplicate rules,
converted leads, ``allOrNone`` rollback and the simulated assignment rule. Nothing here speaks
HTTP; :mod:`crmbridge.sandbox.salesforce` serves an org and re-exports :class:`SalesforceOrg`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crmbridge.sandbox._salesforce_schema import (
    CONVERTED_LEAD_STATUS,
    EXTERNAL_ID_FIELD,
    KEY_PREFIX,
    LeadField,
    LeadSchema,
    SfError,
    Value,
    check_value,
    coerce_record,
    make_id,
    timestamp,
    to_18,
)

LEAD_QUEUE_ID = to_18("00GDn000001LdQu")  # the queue the simulated assignment rule picks
DEFAULT_OWNER_ID = to_18("005Dn000001SimU")  # the integration user owning what it creates

NOT_FOUND_MESSAGE = "The requested resource does not exist"
ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header"
)


@dataclass(frozen=True)
class _RowOutcome:
    id: str | None = None
    created: bool = False
    errors: tuple[SfError, ...] = ()
    matches: tuple[str, ...] = ()

    @property
    def success(self) -> bool:
        return not self.errors

    def as_result(self, *, with_created: bool) -> dict[str, Any]:
        if self.errors:
            return {"success": False, "errors": [e.as_row_error() for e in self.errors]}
        result: dict[str, Any] = {"id": self.id, "success": True, "errors": []}
        if with_created:
            result["created"] = self.created
        return result


def _fail(code: str, message: str, fields: Sequence[str] = ()) -> _RowOutcome:
    return _RowOutcome(errors=(SfError(code, message, tuple(fields)),))


RowFaultHook = Callable[[str], SfError | None]


class _Transaction:
    """Copy-on-write view of the org for one request; the org publishes it on success."""

    def __init__(self, org: SalesforceOrg) -> None:
        self._schema = org.schema
        self._records = org._records
        self._index = org._index
        self.staged: dict[str, dict[str, Value]] = {}
        self._staged_index: dict[str, dict[str, set[str]]] = {name: {} for name in org._index}
        self.assigned: list[str] = []  # ids the simulated assignment rule touched

    def get(self, lead_id: str) -> dict[str, Value] | None:
        return self.staged.get(lead_id) or self._records.get(lead_id)

    def lookup(self, spec: LeadField, value: Value) -> list[str]:
        """Ids whose ``spec`` field equals ``value`` (case-insensitively unless case-sensitive);
        ``spec`` must be indexed (unique, idLookup or under a duplicate rule)."""
        key = _index_key(spec, value)
        if key is None:
            return []
        candidates = self._index[spec.name].get(key, set()) | self._staged_index[spec.name].get(
            key, set()
        )
        return sorted(
            i
            for i in candidates
            if (record := self.get(i)) is not None and _index_key(spec, record[spec.name]) == key
        )

    def put(self, record: dict[str, Value]) -> None:
        lead_id = str(record["Id"])
        previous = self.staged.get(lead_id)
        for name, index in self._staged_index.items():
            spec = self._schema.fields[name]
            if previous is not None and (old := _index_key(spec, previous[name])) is not None:
                index.get(old, set()).discard(lead_id)
            if (new := _index_key(spec, record[name])) is not None:
                index.setdefault(new, set()).add(lead_id)
        self.staged[lead_id] = record


def _index_key(spec: LeadField, value: Value) -> str | None:
    if value is None:
        return None
    return str(value) if spec.case_sensitive else str(value).lower()


class SalesforceOrg:
    """In-memory Lead store of one simulated org: thread-safe, atomic per request.

    The org is usable without HTTP (``upsert``, ``create``, ``seed``) so tests can set up data
    quickly; the simulator calls the same code for the REST endpoints.
    """

    def __init__(
        self,
        *,
        email_internationalization: bool = False,
        restricted_status: bool = True,
        extra_lead_statuses: Iterable[str] = (),
    ) -> None:
        self.schema = LeadSchema(
            restricted_status=restricted_status, extra_statuses=extra_lead_statuses
        )
        self.email_internationalization = email_internationalization
        self.auto_assigned: list[str] = []  # ids the assignment rule touched, in order
        #: How many accepted writes (create or update) each Lead id has had.
        self.writes: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Value]] = {}
        self._index: dict[str, dict[str, set[str]]] = {}
        self._duplicate_rules: list[LeadField] = []
        self._next_number = 1
        for spec in self.schema.fields.values():
            if spec.unique or spec.id_lookup:
                self._index[spec.name] = {}

    # -- reading

    @property
    def leads(self) -> list[dict[str, Value]]:
        """Copies of every stored lead, oldest first."""
        with self._lock:
            return [dict(r) for r in self._records.values()]

    def get(self, lead_id: str) -> dict[str, Value] | None:
        """A copy of the lead with this 15- or 18-character id, or ``None``."""
        with self._lock:
            record = self._records.get(to_18(lead_id))
            return dict(record) if record is not None else None

    def get_by_external_id(
        self, value: str, field: str = EXTERNAL_ID_FIELD
    ) -> dict[str, Value] | None:
        """A copy of the lead whose ``field`` equals ``value`` (case-insensitive), or ``None``."""
        spec = self.schema.field(field)
        if spec is None:
            raise KeyError(field)
        with self._lock:
            ids = _Transaction(self).lookup(spec, value)
            return dict(self._records[ids[0]]) if ids else None

    def lookup_ids(self, field: str, value: Value) -> list[str]:
        """Ids of the leads whose indexed ``field`` (unique, idLookup or under a duplicate rule)
        equals ``value``, case-insensitively."""
        spec = self.schema.field(field)
        if spec is None or spec.name not in self._index:
            raise KeyError(field)
        with self._lock:
            return _Transaction(self).lookup(spec, value)

    def records_snapshot(self) -> list[dict[str, Value]]:
        """The stored records themselves (not copies), for read-only scans such as queries."""
        with self._lock:
            return list(self._records.values())

    # -- set-up helpers

    def convert(self, lead_id: str) -> None:
        """Mark the lead converted (``IsConverted``, Status "Closed - Converted"); ``KeyError``
        when unknown. Later updates of it fail with ``CANNOT_UPDATE_CONVERTED_LEAD``."""
        with self._lock:
            record = self._records[to_18(lead_id)]
            self._records[str(record["Id"])] = {
                **record,
                "IsConverted": True,
                "Status": CONVERTED_LEAD_STATUS,
                "LastModifiedDate": timestamp(datetime.now(UTC)),
            }

    def add_duplicate_rule(self, field: str = "Email") -> None:
        """Block saving a lead when another unconverted lead has the same ``field`` value
        (case-insensitive) with ``DUPLICATES_DETECTED``, as an active blocking rule does."""
        spec = self.schema.field(field)
        if spec is None:
            raise KeyError(field)
        with self._lock:
            self._duplicate_rules.append(spec)
            if spec.name not in self._index:
                self._index[spec.name] = {}
                for record in self._records.values():
                    self._index_add(spec.name, record)

    def seed(self, records: Iterable[Mapping[str, Any]], *, auto_assign: bool = False) -> list[str]:
        """Upsert ``records`` by ``HubSpot_Contact_Id__c`` all-or-none; returns their ids.

        Raises ``ValueError`` listing the first failures when any record is invalid."""
        results = self.upsert(list(records), all_or_none=True, auto_assign=auto_assign)
        failures = [r for r in results if not r["success"]]
        if failures:
            raise ValueError(f"seed records rejected: {failures[:3]}")
        return [str(r["id"]) for r in results]

    # -- writing

    def upsert(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        external_id_field: str = EXTERNAL_ID_FIELD,
        all_or_none: bool = False,
        auto_assign: bool = True,
    ) -> list[dict[str, Any]]:
        """Upsert JSON-shaped records; returns Collections-style results in order.

        Raises ``RequestRejectedError`` for request-level failures (unknown field, wrong JSON
        type) and ``KeyError`` when ``external_id_field`` cannot key an upsert."""
        key = self.schema.upsert_key(external_id_field)
        if key is None:
            raise KeyError(external_id_field)
        rows: list[dict[str, Value | Decimal] | SfError] = [
            coerce_record(self.schema, r) for r in records
        ]
        outcomes = self._upsert_rows(key, rows, all_or_none=all_or_none, auto_assign=auto_assign)
        return [o.as_result(with_created=True) for o in outcomes]

    def create(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        auto_assign: bool = True,
    ) -> list[dict[str, Any]]:
        """Insert JSON-shaped records; returns ``{id, success, errors}`` results in order."""
        rows: list[dict[str, Value | Decimal] | SfError] = [
            coerce_record(self.schema, r) for r in records
        ]
        outcomes = self._create_rows(rows, all_or_none=all_or_none, auto_assign=auto_assign)
        return [o.as_result(with_created=False) for o in outcomes]

    def _upsert_rows(
        self,
        key: LeadField,
        rows: Sequence[dict[str, Value | Decimal] | SfError],
        *,
        all_or_none: bool,
        auto_assign: bool,
        row_fault: RowFaultHook | None = None,
        update_only: bool = False,
    ) -> list[_RowOutcome]:
        keys = [
            None if isinstance(row, SfError) else _index_key(key, _as_value(row.get(key.name)))
            for row in rows
        ]
        repeated = {k for k, n in Counter(keys).items() if k is not None and n > 1}
        with self._lock:
            tx = _Transaction(self)
            outcomes: list[_RowOutcome] = []
            for row, row_key in zip(rows, keys, strict=True):
                if isinstance(row, SfError):
                    outcomes.append(_RowOutcome(errors=(row,)))
                    continue
                value = row.get(key.name)
                if row_key is None:
                    outcomes.append(_fail("MISSING_ARGUMENT", f"{key.name} not specified"))
                elif row_key in repeated:
                    outcomes.append(
                        _fail("DUPLICATE_VALUE", f"Duplicate external id specified: {value}")
                    )
                elif row_fault is not None and (fault := row_fault(str(value))) is not None:
                    outcomes.append(_RowOutcome(errors=(fault,)))
                else:
                    matches = tx.lookup(key, _as_value(value))
                    if len(matches) > 1:
                        outcomes.append(
                            _RowOutcome(
                                errors=(
                                    SfError(
                                        "DUPLICATE_EXTERNAL_ID",
                                        f"{key.name}: more than one record found for external "
                                        f"id field: [{', '.join(matches)}]",
                                        (key.name,),
                                    ),
                                ),
                                matches=tuple(matches),
                            )
                        )
                    elif update_only and not matches:
                        outcomes.append(_fail("NOT_FOUND", NOT_FOUND_MESSAGE))
                    else:
                        existing = tx.get(matches[0]) if matches else None
                        outcomes.append(self._write(tx, row, existing, auto_assign=auto_assign))
            return self._finish(tx, outcomes, all_or_none=all_or_none)

    def _create_rows(
        self,
        rows: Sequence[dict[str, Value | Decimal] | SfError],
        *,
        all_or_none: bool,
        auto_assign: bool,
    ) -> list[_RowOutcome]:
        with self._lock:
            tx = _Transaction(self)
            outcomes = [
                _RowOutcome(errors=(row,))
                if isinstance(row, SfError)
                else self._write(tx, row, None, auto_assign=auto_assign)
                for row in rows
            ]
            return self._finish(tx, outcomes, all_or_none=all_or_none)

    def _finish(
        self, tx: _Transaction, outcomes: list[_RowOutcome], *, all_or_none: bool
    ) -> list[_RowOutcome]:
        if all_or_none and not all(o.success for o in outcomes):
            rolled_back = SfError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)
            return [o if not o.success else _RowOutcome(errors=(rolled_back,)) for o in outcomes]
        for record in tx.staged.values():
            self.writes[str(record["Id"])] += 1
            old = self._records.get(str(record["Id"]))
            if old is not None:
                for name in self._index:
                    self._index_remove(name, old)
            self._records[str(record["Id"])] = record
            for name in self._index:
                self._index_add(name, record)
        self.auto_assigned.extend(tx.assigned)
        return outcomes

    def _index_add(self, name: str, record: Mapping[str, Value]) -> None:
        spec = self.schema.fields[name]
        key = _index_key(spec, record.get(name))
        if key is not None:
            self._index[name].setdefault(key, set()).add(str(record["Id"]))

    def _index_remove(self, name: str, record: Mapping[str, Value]) -> None:
        spec = self.schema.fields[name]
        key = _index_key(spec, record.get(name))
        if key is not None:
            self._index[name].get(key, set()).discard(str(record["Id"]))

    def _write(
        self,
        tx: _Transaction,
        row: Mapping[str, Value | Decimal],
        existing: dict[str, Value] | None,
        *,
        auto_assign: bool,
    ) -> _RowOutcome:
        """Validate one row against the schema and stage it; never raises for bad data."""
        if existing is not None and existing["IsConverted"]:
            return _fail("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        schema = self.schema
        errors: list[SfError] = []
        readonly = [
            name
            for name in row
            if not (schema.fields[name].updateable if existing else schema.fields[name].createable)
        ]
        if readonly:
            errors.append(
                SfError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(readonly)}. Please check the "
                    "security settings of this field and verify that it is read/write for your "
                    "profile or permission set.",
                    tuple(readonly),
                )
            )
        new = dict(existing) if existing is not None else schema.empty_record()
        for name, raw in row.items():
            if name in readonly:
                continue
            stored, error = check_value(
                schema.fields[name],
                raw,
                email_internationalization=self.email_internationalization,
            )
            if error is not None:
                errors.append(error)
            else:
                new[name] = stored
        if existing is None:
            for spec in schema.fields.values():
                if spec.default_value is not None and new[spec.name] is None:
                    new[spec.name] = spec.default_value
        missing = [
            spec.name
            for spec in schema.fields.values()
            if new[spec.name] is None
            and (
                spec.required_on_create
                if existing is None
                else (not spec.nillable and spec.updateable and spec.name in row)
            )
        ]
        if missing:
            errors.append(
                SfError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    tuple(missing),
                )
            )
        if errors:
            return _RowOutcome(errors=tuple(errors))
        own_id = str(existing["Id"]) if existing is not None else None
        for spec in schema.fields.values():
            if spec.unique and new[spec.name] is not None:
                others = [i for i in tx.lookup(spec, new[spec.name]) if i != own_id]
                if others:
                    return _fail(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {spec.name} duplicates value on record with "
                        f"id: {others[0]}",
                        (spec.name,),
                    )
        for spec in self._duplicate_rules:
            others = [
                i
                for i in tx.lookup(spec, new[spec.name])
                if i != own_id and not (tx.get(i) or {}).get("IsConverted")
            ]
            if others:
                return _fail("DUPLICATES_DETECTED", "Use one of these records?")
        now = timestamp(datetime.now(UTC))
        if existing is None:
            new["Id"] = make_id(KEY_PREFIX, "Dn", self._next_number)
            self._next_number += 1
            new["IsConverted"] = False
            new["CreatedDate"] = now
            if new["OwnerId"] is None:
                new["OwnerId"] = DEFAULT_OWNER_ID
        new["LastModifiedDate"] = now
        if auto_assign:
            new["OwnerId"] = LEAD_QUEUE_ID
            tx.assigned.append(str(new["Id"]))
        tx.put(new)
        return _RowOutcome(id=str(new["Id"]), created=existing is None)


def _as_value(value: Value | Decimal) -> Value:
    return float(value) if isinstance(value, Decimal) else value
