"""A local Salesforce REST simulator (Lead only), served over HTTPS with a throwaway CA.

It follows docs/salesforce-api.md#simulator and is driven in the contract tests through the real
simple-salesforce 1.12.10, pointed at it exactly as crmbridge is
(docs/settings.md#salesforce-wiring): ``instance_url`` =
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
- ``GET /sobjects/Lead/describe`` with the standard fields of docs/salesforce-api.md#describe and
the custom fields of
  docs/settings.md#reference-org; ``GET /sobjects``, ``GET /sobjects/Lead/{Id}``, ``GET
  /sobjects/Lead/{field}/{value}``.
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
- ``GET /query`` / ``/queryAll`` with the SOQL subset of ``_soql`` (escapes ``\\'``
  and ``\\\\``, stray backslashes refused), 2,000-row pages (``Sforce-Query-Options:
  batchSize``), ``nextRecordsUrl`` locators, ``INVALID_QUERY_LOCATOR`` (trap 17); URIs over
  16,384 bytes → 414.
- Fault injection: any status with a JSON ``[{message, errorCode}]`` or an HTML body
  (``inject_status``), the same for a seeded random share of requests (``inject_fault_rate``,
  e.g. 30 % transient 503s), per-row errors inside HTTP 200 (``inject_row_error``), a request
  read and never answered (``inject_hang``). A stopped simulator started again serves on the
  same port (an outage and its end).
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
import random
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from crmbridge.sandbox._salesforce_oauth import TOKEN_PATH, TokenEndpoint
from crmbridge.sandbox._salesforce_org import (
    DEFAULT_OWNER_ID,
    LEAD_QUEUE_ID,
    NOT_FOUND_MESSAGE,
    SalesforceOrg,
)
from crmbridge.sandbox._salesforce_routes import Call, LeadRoutes, not_found, request_error
from crmbridge.sandbox._salesforce_schema import EXTERNAL_ID_FIELD, RequestRejectedError, SfError
from crmbridge.sandbox._server import (
    HANG,
    CallLog,
    Fault,
    FaultPlan,
    FaultRate,
    Request,
    Response,
    Served,
    SimulatorServer,
)
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
URI_MAX_BYTES = 16_384

SESSION_EXPIRED_MESSAGE = "Session expired or invalid"
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


def _fault_response(
    status: int, *, error_code: str | None = None, html: bool = False, message: str | None = None
) -> Response:
    """An injected answer: ``[{message, errorCode}]`` (code from ``FAULT_CODES`` unless given),
    or an HTML error page."""
    if html:
        page = _HTML_ERROR_PAGE.format(status=status, phrase=HTTPStatus(status).phrase)
        return Response(status, page, content_type="text/html;charset=UTF-8")
    code = error_code or FAULT_CODES.get(status, "UNKNOWN_EXCEPTION")
    text = message or FAULT_MESSAGES.get(code, code)
    headers = {"WWW-Authenticate": "Token"} if status == 401 else {}
    return Response(status, [{"message": text, "errorCode": code}], headers=headers)


def _version_label(major: int) -> str:
    """Release name of a REST version: v59 is Winter '24, three releases a year."""
    steps = major - 59
    return f"{('Winter', 'Spring', 'Summer')[steps % 3]} '{24 + steps // 3}"


def _parse_version(text: str) -> tuple[int, int] | None:
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


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


_Route = Callable[[Call], Response]

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


class SalesforceSimulator(LeadRoutes, Served):
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
        self._port = 0  # kept after the first start: a restart serves on the same port
        #: JWT bearer logins: ``sim.oauth.register(consumer_key, public_pem, "user@org")``.
        self.oauth = TokenEndpoint(issue=self.issue_token, instance_url=lambda: self.url)
        self._routes = self._route_table()

    # -- lifecycle

    def start(self) -> str:
        """Start serving (idempotent); returns ``https://127.0.0.1:PORT``. After a ``stop()``
        it serves on the same port again (an outage and its end)."""
        if self._server is None:
            server = SimulatorServer(
                self._handle, port=self._port, ssl_context=self._ca.server_context()
            )
            server.start()
            self._port = int(server.url.rsplit(":", 1)[1])
            self._server = server
        return self._server.url

    def stop(self) -> None:
        """Stop serving (idempotent); the org and counters stay readable."""
        if self._server is not None:
            self._server.stop()
            self._server = None

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
        response = _fault_response(status, error_code=error_code, html=html, message=message)
        self.faults.add(
            Fault(method=method, path_pattern=path_pattern, response=response, times=times)
        )

    def inject_fault_rate(
        self,
        fraction: float,
        *,
        status: int = 503,
        method: str = "*",
        path_pattern: str = r"^/services/data/v",
        seed: int = 0,
        html: bool = False,
    ) -> None:
        """From now on answer a ``fraction`` of matching requests (by default every versioned
        REST call) with ``status`` and its ``inject_status`` body, drawn from a generator
        seeded with ``seed``; ``reset`` ends it. Faulted calls are logged, not counted."""
        response = _fault_response(status, html=html)
        self.faults.add_rate(
            FaultRate(method, path_pattern, response, fraction, random.Random(seed))
        )

    def inject_hang(self, *, method: str = "*", path_pattern: str = ".*", times: int = 1) -> None:
        """Read the next ``times`` matching requests (the login too) and never answer them,
        until ``stop``."""
        self.faults.add(Fault(method=method, path_pattern=path_pattern, response=HANG, times=times))

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
        if request.path.rstrip("/") == TOKEN_PATH:
            self.calls.record(f"{request.method} {TOKEN_PATH}")
            return self.faults.take(request) or self.oauth.handle(request)
        if request.path.rstrip("/") == "/services/data":
            self.calls.record(f"{request.method} /services/data")
            return self.faults.take(request) or Response(200, self._versions())
        prefix = "/services/data/v"
        if not request.path.startswith(prefix):
            self.calls.record(f"{request.method} (unknown)")
            return self.faults.take(request) or Response(404, not_found().body())
        version_text, _, rest = request.path[len(prefix) :].partition("/")
        parts = [unquote(p) for p in rest.split("/") if p]
        label, route = self._route(request.method, parts)
        self.calls.record(label)
        fault = self.faults.take(request)
        if fault is not None:
            return fault
        version = _parse_version(version_text)
        if version is None or version > self._latest_version:
            return Response(404, not_found().body())
        if version < self._min_version:
            return Response(
                410, request_error(410, "GONE", "API version is no longer supported").body()
            )
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
        call = Call(request, f"{version[0]}.{version[1]}", version, parts)
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

    def _unknown_route(self, call: Call) -> Response:
        raise not_found()

    def _resources(self, call: Call) -> Response:
        base = f"/services/data/v{call.version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return Response(200, {name: f"{base}/{name}" for name in names})

    def _limits_resource(self, call: Call) -> Response:
        used, cap = self.api_usage
        batches = self.limits.daily_bulk_api_batches
        return Response(
            200,
            {
                "DailyApiRequests": {"Max": cap, "Remaining": max(cap - used, 0)},
                "DailyBulkApiBatches": {"Max": batches, "Remaining": batches},
            },
        )
