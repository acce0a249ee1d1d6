"""The Salesforce simulator's Lead routes: describe, reads, upserts, creates, retrieves, queries.

Holds :class:`LeadRoutes`, a mixin of one handler per Lead route over the state that
:class:`~crmbridge.sandbox.salesforce.SalesforceSimulator` sets up (org, lock, query cursors, row
faults), the parsed request (:class:`Call`) each handler takes, and the request-level errors they
raise. Versions, authentication, the API budget, fault injection and dispatch stay in the simulator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crmbridge.sandbox._salesforce_org import NOT_FOUND_MESSAGE, RowFaultHook, SalesforceOrg
from crmbridge.sandbox._salesforce_schema import (
    KEY_PREFIX,
    LeadField,
    RequestRejectedError,
    SfError,
    Value,
    coerce_record,
    make_id,
    parse_json_body,
)
from crmbridge.sandbox._server import Request, Response
from crmbridge.sandbox._soql import parse_soql

COLLECTIONS_MIN_VERSION = (42, 0)
COLLECTIONS_UPSERT_MIN_VERSION = (46, 0)
COLLECTION_RECORD_CAP = 200
RETRIEVE_ID_CAP = 2_000
QUERY_PAGE_SIZE = 2_000
QUERY_MIN_BATCH_SIZE = 200


@dataclass(frozen=True)
class Call:
    request: Request
    version: str
    version_number: tuple[int, int]
    parts: list[str] = field(default_factory=list)  # unquoted path segments after the version


def request_error(status: int, code: str, message: str) -> RequestRejectedError:
    return RequestRejectedError(status, code, message)


def not_found() -> RequestRejectedError:
    return request_error(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


class LeadRoutes:
    """The Lead route handlers, mixed into :class:`SalesforceSimulator`, which sets the
    attributes below."""

    org: SalesforceOrg
    _lock: threading.Lock
    _cursors: dict[str, tuple[list[dict[str, Any]], int]]
    _cursor_number: int
    _take_row_fault: RowFaultHook

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

    def _global_describe(self, call: Call) -> Response:
        summary = self._lead_summary(call.version)
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [summary]})

    @staticmethod
    def _require_lead(name: str) -> None:
        if name.lower() != "lead":
            raise not_found()

    def _sobject_info(self, call: Call) -> Response:
        self._require_lead(call.parts[1])
        return Response(
            200, {"objectDescribe": self._lead_summary(call.version), "recentItems": []}
        )

    def _describe(self, call: Call) -> Response:
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

    def _fields_param(self, call: Call) -> list[LeadField]:
        names = ",".join(call.request.query.get("fields", [])).split(",")
        wanted = [n.strip() for n in names if n.strip()]
        return self._field_specs(wanted) if wanted else list(self.org.schema.fields.values())

    def _field_specs(self, names: Iterable[str]) -> list[LeadField]:
        specs = []
        for name in names:
            spec = self.org.schema.field(name)
            if spec is None:
                raise request_error(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Lead"
                )
            specs.append(spec)
        return specs

    def _get_record(self, call: Call) -> Response:
        self._require_lead(call.parts[1])
        record = self.org.get(call.parts[2])
        if record is None:
            raise not_found()
        return Response(200, self._record_json(record, self._fields_param(call), call.version))

    def _get_by_external_id(self, call: Call) -> Response:
        self._require_lead(call.parts[1])
        key = self.org.schema.upsert_key(call.parts[2])
        if key is None:
            raise not_found()
        ids = self.org.lookup_ids(key.name, call.parts[3])
        if not ids:
            raise not_found()
        if len(ids) > 1:
            return Response(300, [f"/services/data/v{call.version}/sobjects/Lead/{i}" for i in ids])
        record = self.org.get(ids[0])
        assert record is not None  # ids come from the index, and leads are never deleted
        return Response(200, self._record_json(record, self._fields_param(call), call.version))

    # -- writes

    @staticmethod
    def _auto_assign(request: Request) -> bool:
        return (request.header("Sforce-Auto-Assign") or "TRUE").strip().upper() != "FALSE"

    def _single_upsert(self, call: Call) -> Response:
        self._require_lead(call.parts[1])
        key = self.org.schema.upsert_key(call.parts[2])
        if key is None:
            raise not_found()
        value = call.parts[3]
        body = parse_json_body(call.request.body) if call.request.body else {}
        if not isinstance(body, dict):
            raise request_error(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of Lead from START_ARRAY"
            )
        row = coerce_record(self.org.schema, body)
        if row.get(key.name) is not None and str(row[key.name]) != value:
            raise request_error(
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
                raise not_found()
            return Response(400, [e.as_request_error() for e in outcome.errors])
        with_created = call.version_number >= COLLECTIONS_UPSERT_MIN_VERSION
        if not outcome.created and not with_created:
            return Response(204)
        return Response(
            201 if outcome.created else 200, outcome.as_result(with_created=with_created)
        )

    def _collection_records(self, call: Call, *, cap: int) -> tuple[bool, list[dict[str, Any]]]:
        body = parse_json_body(call.request.body) if call.request.body else None
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise request_error(
                400, "JSON_PARSER_ERROR", "The request body must hold a 'records' array"
            )
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise request_error(
                400, "JSON_PARSER_ERROR", f"Cannot deserialize allOrNone from {all_or_none!r}"
            )
        records = body["records"]
        if len(records) > cap:
            raise request_error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {cap} records into this call",
            )
        if not all(isinstance(r, dict) for r in records):
            raise request_error(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
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

    def _collection_upsert(self, call: Call) -> Response:
        if call.version_number < COLLECTIONS_UPSERT_MIN_VERSION:
            raise not_found()
        self._require_lead(call.parts[2])
        key = self.org.schema.upsert_key(call.parts[3])
        if key is None:
            raise not_found()
        all_or_none, records = self._collection_records(call, cap=COLLECTION_RECORD_CAP)
        outcomes = self.org._upsert_rows(
            key,
            self._collection_rows(records),
            all_or_none=all_or_none,
            auto_assign=self._auto_assign(call.request),
            row_fault=self._take_row_fault,
        )
        return Response(200, [o.as_result(with_created=True) for o in outcomes])

    def _collection_create(self, call: Call) -> Response:
        if call.version_number < COLLECTIONS_MIN_VERSION:
            raise not_found()
        all_or_none, records = self._collection_records(call, cap=COLLECTION_RECORD_CAP)
        outcomes = self.org._create_rows(
            self._collection_rows(records),
            all_or_none=all_or_none,
            auto_assign=self._auto_assign(call.request),
        )
        return Response(200, [o.as_result(with_created=False) for o in outcomes])

    def _retrieve(self, call: Call) -> Response:
        if call.version_number < COLLECTIONS_MIN_VERSION:
            raise not_found()
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
            raise request_error(400, "MISSING_ARGUMENT", "ids and fields are required")
        if len(ids) > RETRIEVE_ID_CAP:
            raise request_error(
                400, "EXCEEDED_ID_LIMIT", f"cannot retrieve more than {RETRIEVE_ID_CAP} ids"
            )
        specs = self._field_specs(names)
        found = [self.org.get(i) for i in ids]
        return Response(
            200, [None if r is None else self._record_json(r, specs, call.version) for r in found]
        )

    # -- queries

    def _query(self, call: Call) -> Response:
        soql = call.request.query.get("q", [""])[0]
        if not soql.strip():
            raise request_error(400, "MALFORMED_QUERY", "A query string (q) is required")
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
        call: Call,
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

    def _query_more(self, call: Call) -> Response:
        locator, _, offset_text = call.parts[1].rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset_text.isdigit():
            raise request_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        records, size = cursor
        return self._page(call, records, offset=int(offset_text), size=size, locator=locator)
