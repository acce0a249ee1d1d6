"""A local Salesforce REST simulator (Lead only), served over HTTPS with a throwaway CA.

It follows api-contracts.md section 4 and is driven in the contract tests through the real
simple-salesforce 1.12.10, pointed at it exactly as crmbridge is (section 1): ``instance_url`` =
``sim.start()``, ``session_id`` = ``sim.access_token``, a ``requests.Session`` trusting
``sim.ca_path`` with ``trust_env = False``.

Modelled (why it matters to a connector):
- HTTPS only, certificate for 127.0.0.1/localhost from ``crmbridge.sandbox.tls``: simple-salesforce
  always speaks https, and env CA bundles override ``Session.verify`` (trap 18).
- ``/services/data/`` (version list, uncounted); ``vXX.X`` gating: below ``min_version`` (31.0 by
  default, so v7-30) → 410 GONE, above ``LATEST_API_VERSION`` → 404, Collections upsert below 46.0
  → 404, single upsert answers 204 on update up to v45 and 200/201 with ``created`` from v46.
- Bearer auth (``OAuth`` prefix too); ``expire_session`` → 401 ``INVALID_SESSION_ID`` (trap 15).
- API budget: each request counts 1 (Collections too), ``Sforce-Limit-Info: api-usage=U/M`` on
  every counted answer, 403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit exceeded." when spent,
  ``GET /limits`` (exact, no lag; itself counted) (trap 14).
- ``GET /sobjects/Lead/describe`` with the standard fields of 4.2 and the custom fields of
  section 2; ``GET /sobjects``, ``GET /sobjects/Lead/{Id}``, ``GET /sobjects/Lead/{field}/{value}``.
- ``PATCH /composite/sobjects/Lead/{ExtField}``: HTTP 200 with per-row results in request order
  (``statusCode`` row errors, trap 8); ≤200 records (``EXCEEDED_ID_LIMIT``); whole-request 400 for
  unknown fields (``INVALID_FIELD``) and wrong JSON types (``JSON_PARSER_ERROR``: one "50k" sinks
  all rows); in-batch duplicate keys fail every copy (``DUPLICATE_VALUE``, trap 9); ``allOrNone``
  rollback with ``ALL_OR_NONE_OPERATION_ROLLED_BACK``; required fields, lengths
  (``STRING_TOO_LONG``), e-mail syntax and non-ASCII local parts unless the org enabled
  internationalisation, restricted picklists only, numeric precision, unique fields, converted
  leads, an optional duplicate rule, injected per-row ``UNABLE_TO_LOCK_ROW`` (traps 10-13, 16).
- ``PATCH /sobjects/Lead/{ExtField}/{value}`` (201/200/204, 300 on several matches, 400 with
  ``errorCode`` list, ``updateOnly``), ``POST /composite/sobjects`` (create),
  ``GET|POST /composite/sobjects/Lead`` (retrieve; unknown ids → null).
- ``Sforce-Auto-Assign``: absent or TRUE runs the "assignment rule" (OwnerId becomes
  ``LEAD_QUEUE_ID`` and the id is recorded in ``org.auto_assigned``); FALSE keeps the owner.
- ``GET /query`` / ``/queryAll`` with the SOQL subset of ``_salesforce_schema`` (escapes ``\\'``
  and ``\\\\``, stray backslashes refused), 2,000-row pages (``Sforce-Query-Options:
  batchSize``), ``nextRecordsUrl`` locators, ``INVALID_QUERY_LOCATOR`` (trap 17); URIs over
  16,384 bytes → 414.
- Fault injection: any status with a JSON ``[{message, errorCode}]`` or an HTML body
  (``inject_status``), per-row errors inside HTTP 200 (``inject_row_error``).
- Test aids: ``calls`` (a ``CallLog`` by route label), ``api_usage``/``set_api_usage``, and
  ``reset(org, limits=…)`` so a test module can share one running server (stopping one costs
  ``_server``'s poll interval).

Not modelled: Bulk API 2.0 (``/jobs/ingest``), ``/composite`` / ``/composite/graph`` /
``/composite/batch``, objects other than Lead, login flows (SOAP, JWT: only pre-issued tokens),
field-level security, validation rules and triggers, State/Country picklists, the concurrent
long-request limit (inject it: ``inject_status(403, message="ConcurrentPerOrgLongTxn Limit
exceeded.")``), ``duplicateResult`` details, time-based locator expiry (call
``expire_query_locators``), ``Sforce-Duplicate-Rule-Header``, upserts keyed by ``Id``, 405s (an
unknown method or path answers 404 ``NOT_FOUND``).

Unverified choices (clients must survive either answer): a Collections row without
``attributes.type`` fails that row with ``INVALID_TYPE``; a non-External-ID key field on the
Collections path answers 404 ``NOT_FOUND`` like the single-record path; ``Email`` (``idLookup``)
is accepted as an upsert key (a value on several leads: row ``DUPLICATE_EXTERNAL_ID`` in
Collections, 300 for a single upsert); a body key value that differs from the URL's is a 400
``INVALID_FIELD``; injected faults and refused (401/403/410) requests are not counted.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
import threading
import types
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlencode

from crmbridge.sandbox._salesforce_schema import (
    CONVERTED_LEAD_STATUS,
    EXTERNAL_ID_FIELD,
    KEY_PREFIX,
    LeadField,
    LeadSchema,
    RequestRejectedError,
    SfError,
    Value,
    check_value,
    coerce_record,
    make_id,
    parse_json_body,
    parse_soql,
    timestamp,
    to_18,
)
from crmbridge.sandbox._server import CallLog, Fault, FaultPlan, Request, Response, SimulatorServer
from crmbridge.sandbox.tls import LocalCA, make_local_ca

__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_OWNER_ID",
    "EXTERNAL_ID_FIELD",
    "LATEST_API_VERSION",
    "LEAD_QUEUE_ID",
    "SalesforceLimits",
    "SalesforceOrg",
    "SalesforceSimulator",
]

DEFAULT_ACCESS_TOKEN = "sandbox-salesforce-token"  # noqa: S105 - a fixed sandbox token, not a secret
LATEST_API_VERSION = "64.0"
COLLECTIONS_MIN_VERSION = (42, 0)
COLLECTIONS_UPSERT_MIN_VERSION = (46, 0)
COLLECTION_RECORD_CAP = 200
RETRIEVE_ID_CAP = 2_000
QUERY_PAGE_SIZE = 2_000
QUERY_MIN_BATCH_SIZE = 200
URI_MAX_BYTES = 16_384

LEAD_QUEUE_ID = to_18("00GDn000001LdQu")  # the queue the simulated assignment rule picks
DEFAULT_OWNER_ID = to_18("005Dn000001SimU")  # the integration user owning what it creates

NOT_FOUND_MESSAGE = "The requested resource does not exist"
SESSION_EXPIRED_MESSAGE = "Session expired or invalid"
ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header"
)
FAULT_CODES = {
    400: "UNABLE_TO_LOCK_ROW",
    401: "INVALID_SESSION_ID",
    403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND",
    500: "UNKNOWN_EXCEPTION",
    502: "SERVER_UNAVAILABLE",
    503: "SERVER_UNAVAILABLE",
}
FAULT_MESSAGES = {
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record",
    "INVALID_SESSION_ID": SESSION_EXPIRED_MESSAGE,
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "NOT_FOUND": NOT_FOUND_MESSAGE,
    "UNKNOWN_EXCEPTION": "An unexpected error occurred. Please include this ErrorId if you "
    "contact support: 1234567890-12345 (-1234567890)",
    "SERVER_UNAVAILABLE": "Server temporarily unavailable, please try again later.",
}
_HTML_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
    "<body><h1>{phrase}</h1><p>The server is temporarily unable to service your request. "
    "Please try again later.</p></body></html>"
)


def _version_label(major: int) -> str:
    """Release name of a REST version: v59 is Winter '24, three releases a year."""
    steps = major - 59
    return f"{('Winter', 'Spring', 'Summer')[steps % 3]} '{24 + steps // 3}"


def _parse_version(text: str) -> tuple[int, int] | None:
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


# --- the org -----------------------------------------------------------------------------


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


# --- the HTTP simulator ------------------------------------------------------------------


@dataclass(frozen=True)
class SalesforceLimits:
    """The org's 24-hour budgets as ``/limits`` reports them, and the usage to start from."""

    daily_api_requests: int = 100_000
    daily_bulk_api_batches: int = 15_000
    api_requests_used: int = 0


@dataclass
class _RowFault:
    error: SfError
    times: int


@dataclass(frozen=True)
class _Call:
    request: Request
    version: str
    version_number: tuple[int, int]
    parts: list[str] = field(default_factory=list)  # unquoted path segments after the version


_Route = Callable[[_Call], Response]

_ca_dir_lock = threading.Lock()
_process_ca_dirs: list[Path] = []


def _process_ca_dir() -> Path:
    """One CA directory per process (removed at exit), so simulators share one key pair."""
    with _ca_dir_lock:
        if not _process_ca_dirs:
            path = Path(tempfile.mkdtemp(prefix="crmbridge-sandbox-ca-"))
            atexit.register(shutil.rmtree, path, ignore_errors=True)
            _process_ca_dirs.append(path)
        return _process_ca_dirs[0]


def _error(status: int, code: str, message: str) -> RequestRejectedError:
    return RequestRejectedError(status, code, message)


def _not_found() -> RequestRejectedError:
    return _error(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


class SalesforceSimulator:
    """Salesforce REST for the Lead object on ``https://127.0.0.1:<free port>``.

    Thread-safe; ``start()`` is idempotent and returns the instance URL; use as a context
    manager to stop it reliably. ``calls`` counts requests by route label (for example
    ``"PATCH /composite/sobjects/Lead/{extField}"``), ``faults`` holds injected answers.
    """

    def __init__(
        self,
        org: SalesforceOrg | None = None,
        *,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        limits: SalesforceLimits | None = None,
        ca_dir: Path | None = None,
        min_version: str = "31.0",
    ) -> None:
        minimum = _parse_version(min_version)
        latest = _parse_version(LATEST_API_VERSION)
        if minimum is None or latest is None:
            raise ValueError(f"min_version must look like '31.0', not {min_version!r}")
        self.org = org if org is not None else SalesforceOrg()
        self.limits = limits if limits is not None else SalesforceLimits()
        self._initial_limits = self.limits
        self.calls = CallLog()
        self.faults = FaultPlan()
        self._min_version = minimum
        self._latest_version = latest
        self._lock = threading.Lock()
        self._initial_token = access_token
        self._tokens = {access_token}
        self._current_token = access_token
        self._used = self.limits.api_requests_used
        self._row_faults: dict[str, list[_RowFault]] = {}
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._cursor_number = 0
        self._ca: LocalCA = make_local_ca(ca_dir if ca_dir is not None else _process_ca_dir())
        self._server: SimulatorServer | None = None
        self._routes = self._route_table()

    # -- lifecycle

    def start(self) -> str:
        """Start serving (idempotent); returns ``https://127.0.0.1:PORT``."""
        if self._server is None:
            server = SimulatorServer(self._handle, ssl_context=self._ca.server_context())
            server.start()
            self._server = server
        return self._server.url

    def stop(self) -> None:
        """Stop serving (idempotent); the org and counters stay readable."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def reset(
        self, org: SalesforceOrg | None = None, *, limits: SalesforceLimits | None = None
    ) -> None:
        """Start over without restarting the server: a new org (a fresh empty one unless
        given), the limits given (else those it was built with) at their starting usage, the
        initial token valid again, and no calls, faults, row errors or query cursors."""
        self.org = org if org is not None else SalesforceOrg()
        self.calls.reset()
        self.faults.clear()
        with self._lock:
            self.limits = limits if limits is not None else self._initial_limits
            self._used = self.limits.api_requests_used
            self._tokens = {self._initial_token}
            self._current_token = self._initial_token
            self._row_faults.clear()
            self._cursors.clear()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.url

    @property
    def ca(self) -> LocalCA:
        return self._ca

    @property
    def ca_path(self) -> str:
        """The CA certificate to trust, as the ``str`` that ``requests``' ``verify`` needs."""
        return str(self._ca.ca_path)

    # -- auth and budget

    @property
    def access_token(self) -> str:
        """The most recently issued token (invalid after ``expire_session`` until re-issued)."""
        with self._lock:
            return self._current_token

    def issue_token(self) -> str:
        """Issue and return a fresh valid token (what a new login would give)."""
        token = f"00DSIM000000001!{secrets.token_urlsafe(32)}"
        with self._lock:
            self._tokens.add(token)
            self._current_token = token
        return token

    def expire_session(self) -> None:
        """Invalidate every issued token: the next request answers 401 ``INVALID_SESSION_ID``."""
        with self._lock:
            self._tokens.clear()

    @property
    def api_usage(self) -> tuple[int, int]:
        """``(used, max)`` of the daily API request budget."""
        with self._lock:
            return self._used, self.limits.daily_api_requests

    def set_api_usage(self, used: int) -> None:
        """Move the rolling 24 h usage, e.g. back below the cap to let a paused client resume."""
        with self._lock:
            self._used = used

    # -- fault injection

    def inject_status(
        self,
        status: int,
        *,
        method: str = "*",
        path_pattern: str = ".*",
        times: int = 1,
        error_code: str | None = None,
        html: bool = False,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` before auth and budget
        checks (the call is logged, not counted). The body is ``[{message, errorCode}]`` with a
        code from ``FAULT_CODES`` unless given, or an HTML page when ``html``."""
        if html:
            page = _HTML_ERROR_PAGE.format(status=status, phrase=HTTPStatus(status).phrase)
            response = Response(status, page, content_type="text/html;charset=UTF-8")
        else:
            code = error_code or FAULT_CODES.get(status, "UNKNOWN_EXCEPTION")
            text = message or FAULT_MESSAGES.get(code, code)
            headers = {"WWW-Authenticate": "Token"} if status == 401 else {}
            response = Response(status, [{"message": text, "errorCode": code}], headers=headers)
        self.faults.add(
            Fault(method=method, path_pattern=path_pattern, response=response, times=times)
        )

    def inject_row_error(
        self,
        external_id: str,
        code: str = "UNABLE_TO_LOCK_ROW",
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """Fail the next ``times`` upserts of the record keyed ``external_id`` (exact value) with
        ``code``: a row error inside HTTP 200 for Collections, a 400 for single upserts."""
        error = SfError(code, message or FAULT_MESSAGES.get(code, code))
        with self._lock:
            self._row_faults.setdefault(external_id, []).append(_RowFault(error, times))

    def expire_query_locators(self) -> None:
        """Forget open query cursors: following a ``nextRecordsUrl`` answers 400."""
        with self._lock:
            self._cursors.clear()

    def _take_row_fault(self, value: str) -> SfError | None:
        with self._lock:
            for fault in self._row_faults.get(value, []):
                if fault.times > 0:
                    fault.times -= 1
                    return fault.error
        return None

    # -- dispatch

    def _handle(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/services/data":
            self.calls.record(f"{request.method} /services/data")
            return self.faults.take(request) or Response(200, self._versions())
        prefix = "/services/data/v"
        if not request.path.startswith(prefix):
            self.calls.record(f"{request.method} (unknown)")
            return self.faults.take(request) or Response(404, _not_found().body())
        version_text, _, rest = request.path[len(prefix) :].partition("/")
        parts = [unquote(p) for p in rest.split("/") if p]
        label, route = self._route(request.method, parts)
        self.calls.record(label)
        fault = self.faults.take(request)
        if fault is not None:
            return fault
        version = _parse_version(version_text)
        if version is None or version > self._latest_version:
            return Response(404, _not_found().body())
        if version < self._min_version:
            return Response(410, _error(410, "GONE", "API version is no longer supported").body())
        uri_bytes = len(request.path) + len(urlencode(request.query, doseq=True)) + 1
        if uri_bytes > URI_MAX_BYTES:
            return Response(
                414, "<html><body>414 URI Too Long</body></html>", content_type="text/html"
            )
        if not self._authorized(request):
            body = [{"message": SESSION_EXPIRED_MESSAGE, "errorCode": "INVALID_SESSION_ID"}]
            return Response(401, body, headers={"WWW-Authenticate": "Token"})
        with self._lock:
            refused = self._used >= self.limits.daily_api_requests
            if not refused:
                self._used += 1
            usage = f"api-usage={self._used}/{self.limits.daily_api_requests}"
        if refused:
            body = [
                {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
            ]
            return Response(403, body, headers={"Sforce-Limit-Info": usage})
        call = _Call(request, f"{version[0]}.{version[1]}", version, parts)
        try:
            response = route(call)
        except RequestRejectedError as exc:
            response = Response(exc.status, exc.body())
        response.headers["Sforce-Limit-Info"] = usage
        return response

    def _route_table(self) -> list[tuple[str, tuple[str, ...], _Route]]:
        """(method, path segments, handler); ``{…}`` matches any one segment, first match wins."""
        lead = ("sobjects", "{sobject}")
        collections = ("composite", "sobjects")
        return [
            ("GET", (), self._resources),
            ("GET", ("limits",), self._limits_resource),
            ("GET", ("sobjects",), self._global_describe),
            ("GET", lead, self._sobject_info),
            ("GET", (*lead, "describe"), self._describe),
            ("GET", (*lead, "{id}"), self._get_record),
            ("GET", (*lead, "{extField}", "{value}"), self._get_by_external_id),
            ("PATCH", (*lead, "{extField}", "{value}"), self._single_upsert),
            ("GET", ("query",), self._query),
            ("GET", ("queryAll",), self._query),
            ("GET", ("query", "{locator}"), self._query_more),
            ("GET", ("queryAll", "{locator}"), self._query_more),
            ("POST", collections, self._collection_create),
            ("GET", (*collections, "{sobject}"), self._retrieve),
            ("POST", (*collections, "{sobject}"), self._retrieve),
            ("PATCH", (*collections, "{sobject}", "{extField}"), self._collection_upsert),
        ]

    def _route(self, method: str, parts: list[str]) -> tuple[str, _Route]:
        """The call-log label (``"PATCH /composite/sobjects/Lead/{extField}"``) and handler."""
        for verb, pattern, handler in self._routes:
            if verb != method or len(pattern) != len(parts):
                continue
            if all(
                p.startswith("{") or p == actual for p, actual in zip(pattern, parts, strict=True)
            ):
                shown = [
                    actual if not p.startswith("{") or p == "{sobject}" else p
                    for p, actual in zip(pattern, parts, strict=True)
                ]
                return f"{method} /{'/'.join(shown)}", handler
        return f"{method} (unknown)", self._unknown_route

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return False
        with self._lock:
            return token.strip() in self._tokens

    # -- resources

    def _versions(self) -> list[dict[str, str]]:
        return [
            {
                "label": _version_label(major),
                "url": f"/services/data/v{major}.0",
                "version": f"{major}.0",
            }
            for major in range(self._min_version[0], self._latest_version[0] + 1)
        ]

    def _unknown_route(self, call: _Call) -> Response:
        raise _not_found()

    def _resources(self, call: _Call) -> Response:
        base = f"/services/data/v{call.version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return Response(200, {name: f"{base}/{name}" for name in names})

    def _limits_resource(self, call: _Call) -> Response:
        used, cap = self.api_usage
        batches = self.limits.daily_bulk_api_batches
        return Response(
            200,
            {
                "DailyApiRequests": {"Max": cap, "Remaining": max(cap - used, 0)},
                "DailyBulkApiBatches": {"Max": batches, "Remaining": batches},
            },
        )

    def _lead_summary(self, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/Lead"
        return {
            "name": "Lead",
            "label": "Lead",
            "keyPrefix": KEY_PREFIX,
            "custom": False,
            "createable": True,
            "updateable": True,
            "queryable": True,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def _global_describe(self, call: _Call) -> Response:
        summary = self._lead_summary(call.version)
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [summary]})

    @staticmethod
    def _require_lead(name: str) -> None:
        if name.lower() != "lead":
            raise _not_found()

    def _sobject_info(self, call: _Call) -> Response:
        self._require_lead(call.parts[1])
        return Response(
            200, {"objectDescribe": self._lead_summary(call.version), "recentItems": []}
        )

    def _describe(self, call: _Call) -> Response:
        self._require_lead(call.parts[1])
        return Response(200, self.org.schema.describe(call.version))

    def _record_json(
        self, record: Mapping[str, Value], specs: Sequence[LeadField], version: str
    ) -> dict[str, Any]:
        url = f"/services/data/v{version}/sobjects/Lead/{record['Id']}"
        return {
            "attributes": {"type": "Lead", "url": url},
            **{s.name: record[s.name] for s in specs},
        }

    def _fields_param(self, call: _Call) -> list[LeadField]:
        names = ",".join(call.request.query.get("fields", [])).split(",")
        wanted = [n.strip() for n in names if n.strip()]
        return self._field_specs(wanted) if wanted else list(self.org.schema.fields.values())

    def _field_specs(self, names: Iterable[str]) -> list[LeadField]:
        specs = []
        for name in names:
            spec = self.org.schema.field(name)
            if spec is None:
                raise _error(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Lead"
                )
            specs.append(spec)
        return specs

    def _get_record(self, call: _Call) -> Response:
        self._require_lead(call.parts[1])
        record = self.org.get(call.parts[2])
        if record is None:
            raise _not_found()
        return Response(200, self._record_json(record, self._fields_param(call), call.version))

    def _get_by_external_id(self, call: _Call) -> Response:
        self._require_lead(call.parts[1])
        key = self.org.schema.upsert_key(call.parts[2])
        if key is None:
            raise _not_found()
        ids = self.org.lookup_ids(key.name, call.parts[3])
        if not ids:
            raise _not_found()
        if len(ids) > 1:
            return Response(300, [f"/services/data/v{call.version}/sobjects/Lead/{i}" for i in ids])
        record = self.org.get(ids[0])
        assert record is not None  # ids come from the index, and leads are never deleted
        return Response(200, self._record_json(record, self._fields_param(call), call.version))

    # -- writes

    @staticmethod
    def _auto_assign(request: Request) -> bool:
        return (request.header("Sforce-Auto-Assign") or "TRUE").strip().upper() != "FALSE"

    def _single_upsert(self, call: _Call) -> Response:
        self._require_lead(call.parts[1])
        key = self.org.schema.upsert_key(call.parts[2])
        if key is None:
            raise _not_found()
        value = call.parts[3]
        body = parse_json_body(call.request.body) if call.request.body else {}
        if not isinstance(body, dict):
            raise _error(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of Lead from START_ARRAY"
            )
        row = coerce_record(self.org.schema, body)
        if row.get(key.name) is not None and str(row[key.name]) != value:
            raise _error(
                400,
                "INVALID_FIELD",
                f"{key.name} in the body ({row[key.name]}) does not match the URL ({value})",
            )
        row[key.name] = value
        update_only = call.request.query.get("updateOnly", [""])[0].lower() == "true"
        outcome = self.org._upsert_rows(
            key,
            [row],
            all_or_none=True,
            auto_assign=self._auto_assign(call.request),
            row_fault=self._take_row_fault,
            update_only=update_only,
        )[0]
        if outcome.matches:
            base = f"/services/data/v{call.version}/sobjects/Lead"
            return Response(300, [f"{base}/{i}" for i in outcome.matches])
        if outcome.errors:
            if outcome.errors[0].code == "NOT_FOUND":
                raise _not_found()
            return Response(400, [e.as_request_error() for e in outcome.errors])
        with_created = call.version_number >= COLLECTIONS_UPSERT_MIN_VERSION
        if not outcome.created and not with_created:
            return Response(204)
        return Response(
            201 if outcome.created else 200, outcome.as_result(with_created=with_created)
        )

    def _collection_records(self, call: _Call, *, cap: int) -> tuple[bool, list[dict[str, Any]]]:
        body = parse_json_body(call.request.body) if call.request.body else None
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _error(400, "JSON_PARSER_ERROR", "The request body must hold a 'records' array")
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise _error(
                400, "JSON_PARSER_ERROR", f"Cannot deserialize allOrNone from {all_or_none!r}"
            )
        records = body["records"]
        if len(records) > cap:
            raise _error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {cap} records into this call",
            )
        if not all(isinstance(r, dict) for r in records):
            raise _error(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
        return all_or_none, records

    def _collection_rows(
        self, records: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Value | Decimal] | SfError]:
        coerced = [coerce_record(self.org.schema, r) for r in records]  # request-level first
        rows: list[dict[str, Value | Decimal] | SfError] = []
        for record, row in zip(records, coerced, strict=True):
            attributes = record.get("attributes")
            sobject = attributes.get("type") if isinstance(attributes, dict) else None
            if not sobject:
                rows.append(SfError("INVALID_TYPE", "No sObject type defined in record attributes"))
            elif str(sobject).lower() != "lead":
                rows.append(SfError("INVALID_TYPE", f"sObject type '{sobject}' is not supported."))
            else:
                rows.append(row)
        return rows

    def _collection_upsert(self, call: _Call) -> Response:
        if call.version_number < COLLECTIONS_UPSERT_MIN_VERSION:
            raise _not_found()
        self._require_lead(call.parts[2])
        key = self.org.schema.upsert_key(call.parts[3])
        if key is None:
            raise _not_found()
        all_or_none, records = self._collection_records(call, cap=COLLECTION_RECORD_CAP)
        outcomes = self.org._upsert_rows(
            key,
            self._collection_rows(records),
            all_or_none=all_or_none,
            auto_assign=self._auto_assign(call.request),
            row_fault=self._take_row_fault,
        )
        return Response(200, [o.as_result(with_created=True) for o in outcomes])

    def _collection_create(self, call: _Call) -> Response:
        if call.version_number < COLLECTIONS_MIN_VERSION:
            raise _not_found()
        all_or_none, records = self._collection_records(call, cap=COLLECTION_RECORD_CAP)
        outcomes = self.org._create_rows(
            self._collection_rows(records),
            all_or_none=all_or_none,
            auto_assign=self._auto_assign(call.request),
        )
        return Response(200, [o.as_result(with_created=False) for o in outcomes])

    def _retrieve(self, call: _Call) -> Response:
        if call.version_number < COLLECTIONS_MIN_VERSION:
            raise _not_found()
        self._require_lead(call.parts[2])
        if call.request.method == "POST":
            body = parse_json_body(call.request.body) if call.request.body else None
            body = body if isinstance(body, dict) else {}
            ids = [str(i) for i in body.get("ids") or []]
            names = [str(f) for f in body.get("fields") or []]
        else:
            ids = [i for i in ",".join(call.request.query.get("ids", [])).split(",") if i]
            names = [f for f in ",".join(call.request.query.get("fields", [])).split(",") if f]
        if not ids or not names:
            raise _error(400, "MISSING_ARGUMENT", "ids and fields are required")
        if len(ids) > RETRIEVE_ID_CAP:
            raise _error(
                400, "EXCEEDED_ID_LIMIT", f"cannot retrieve more than {RETRIEVE_ID_CAP} ids"
            )
        specs = self._field_specs(names)
        found = [self.org.get(i) for i in ids]
        return Response(
            200, [None if r is None else self._record_json(r, specs, call.version) for r in found]
        )

    # -- queries

    def _query(self, call: _Call) -> Response:
        soql = call.request.query.get("q", [""])[0]
        if not soql.strip():
            raise _error(400, "MALFORMED_QUERY", "A query string (q) is required")
        query = parse_soql(self.org.schema, soql)
        records = [
            self._record_json(r, query.fields, call.version)
            for r in query.run(self.org.records_snapshot())
        ]
        return self._page(call, records, offset=0, size=self._page_size(call.request), locator=None)

    @staticmethod
    def _page_size(request: Request) -> int:
        for option in (request.header("Sforce-Query-Options") or "").split(","):
            name, _, value = option.partition("=")
            if name.strip().lower() == "batchsize" and value.strip().isdigit():
                return min(max(int(value), QUERY_MIN_BATCH_SIZE), QUERY_PAGE_SIZE)
        return QUERY_PAGE_SIZE

    def _page(
        self,
        call: _Call,
        records: list[dict[str, Any]],
        *,
        offset: int,
        size: int,
        locator: str | None,
    ) -> Response:
        end = offset + size
        body: dict[str, Any] = {
            "totalSize": len(records),
            "done": end >= len(records),
            "records": records[offset:end],
        }
        with self._lock:
            if end >= len(records):
                if locator is not None:
                    self._cursors.pop(locator, None)
            else:
                if locator is None:
                    self._cursor_number += 1
                    locator = make_id("01g", "Sm", self._cursor_number)
                self._cursors[locator] = (records, size)
                body["nextRecordsUrl"] = (
                    f"/services/data/v{call.version}/{call.parts[0]}/{locator}-{end}"
                )
        return Response(200, body)

    def _query_more(self, call: _Call) -> Response:
        locator, _, offset_text = call.parts[1].rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset_text.isdigit():
            raise _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        records, size = cursor
        return self._page(call, records, offset=int(offset_text), size=size, locator=locator)
