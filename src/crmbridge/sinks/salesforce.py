"""Salesforce as a lead sink: Lead upserts by external id through ``simple-salesforce``.

This module and ``sources/hubspot.py`` are the only places that touch a client library.

Salesforce quirks this adapter is built around (docs/salesforce-api.md, docs/traps.md), each with
why:

- **HTTP 200 is not success.** sObject Collections answer 200 with one result per record; every
  result is read and turned into a ``PushResult`` (row errors carry ``statusCode``).
- **``statusCode`` vs ``errorCode``**: row errors use the first, request errors the second.
  Errors are classified by code, never by HTTP status alone.
- **simple-salesforce builds https URLs from the host only** and retries nothing itself in
  direct-token mode: retries are ours (``retry.py``), and an expired session is replayed once
  with a fresh token from the token provider.
- **The environment's CA bundle beats ``Session.verify``** (``REQUESTS_CA_BUNDLE`` /
  ``CURL_CA_BUNDLE``): with a configured CA bundle the session gets ``trust_env = False``.
- **Lead assignment rules run on every upsert** unless ``Sforce-Auto-Assign: FALSE`` is sent.
- **``REQUEST_LIMIT_EXCEEDED`` comes as a 403**: "TotalRequests" is the shared daily budget
  (stop the pass, keep the cursor); "ConcurrentPerOrgLongTxn" is a burst (back off).
- **``sf.Lead.upsert`` leaves ``sf.api_usage`` stale**, so every call goes through
  ``sf.restful``, which parses ``Sforce-Limit-Info``; the configured reserve of the daily
  budget is left to people and other integrations.
- **One bad value fails the whole Collections request** (``JSON_PARSER_ERROR``): the mapper
  coerces types first; a request still refused is raised for the pipeline to isolate.
- **SOQL is a language, not a template** (docs/salesforce-api.md, "SOQL"): every literal of
  the current-values query is escaped (``\\`` and ``\'``), and its ``IN`` list is cut so
  each query stays under 4,000 characters of ``WHERE`` and 16,384 bytes of URI; 200 contact ids
  fit in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

from crmbridge.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    ConfigError,
    ConfigProblem,
    FatalApiError,
    Location,
    RateLimitedError,
    RequestRejectedError,
    RetryableApiError,
    SessionExpiredError,
)
from crmbridge.model import (
    FieldSpec,
    MappedLead,
    ObjectSchema,
    PicklistValue,
    PushResult,
    RecordError,
)
from crmbridge.redaction import redact, register_secret
from crmbridge.retry import RetryPolicy
from crmbridge.settings import SalesforceSettings

SYSTEM = "salesforce"
COLLECTION_MAX = 200
TRANSIENT_ROW_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "PROCESSING_HALTED"}
)
TRANSIENT_REQUEST_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "QUERY_TIMEOUT", "SERVER_UNAVAILABLE"})
FATAL_REQUEST_CODES = frozenset({"API_DISABLED_FOR_ORG", "STORAGE_LIMIT_EXCEEDED"})
#: SOQL limits a query built from data must stay under (docs/salesforce-api.md, "SOQL"), with
#: room for the rest of the request line.
SOQL_WHERE_MAX_CHARS = 3_900
SOQL_URI_MAX_BYTES = 15_000

TokenProvider = Callable[[], str]

log = structlog.get_logger(__name__)


def build_session(ca_bundle: str | None) -> requests.Session:
    """A ``requests.Session`` that trusts ``ca_bundle`` whatever the environment says."""
    session = requests.Session()
    if ca_bundle:
        session.verify = ca_bundle
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would otherwise replace verify (trap 18).
        session.trust_env = False
    return session


def is_transient_row_error(error: RecordError) -> bool:
    """Row errors worth resending: locks and collateral roll-backs (trap 16)."""
    return error.code in TRANSIENT_ROW_CODES or (
        error.code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
        and "UNABLE_TO_LOCK_ROW" in error.message
    )


class SalesforceSink:
    """The ``LeadSink`` port on Salesforce REST (sObject Collections upsert by external id)."""

    def __init__(
        self,
        settings: SalesforceSettings,
        retry: RetryPolicy,
        *,
        external_id_field: str,
        object_name: str = "Lead",
        object_location: Location | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        """``object_location`` is where the object's name was configured (``fields.yaml``'s
        ``object:`` line): a describe answering NOT_FOUND points there."""
        if not settings.instance_url:
            raise ValueError("Salesforce instance_url is required")
        configured = settings.access_token.get_secret_value() if settings.access_token else ""
        if not configured and token_provider is None:
            raise ValueError("a Salesforce access token or a token provider is required")
        self._settings = settings
        self._retry = retry
        self._object_location = object_location
        self._object = object_name
        self._external_id = external_id_field
        # Without a login flow the configured token is all there is: renewal yields the same.
        self._token_provider: TokenProvider = token_provider or (lambda: configured)
        self._token = configured or self._token_provider()
        register_secret(self._token)
        self._session = build_session(str(settings.ca_bundle) if settings.ca_bundle else None)
        # simple-salesforce's exceptions drop the response headers: keep Retry-After here.
        self._retry_after_s: float | None = None
        self._session.hooks["response"].append(self._remember_retry_after)
        self._sf = self._connect()
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self.calls = 0

    def _connect(self) -> Salesforce:
        return Salesforce(
            instance_url=self._settings.instance_url,
            session_id=self._token,
            version=self._settings.api_version,
            session=self._session,
        )

    def close(self) -> None:
        self._session.close()

    def _remember_retry_after(self, response: requests.Response, **_: Any) -> None:
        self._retry_after_s = _seconds(response.headers.get("Retry-After"))

    # -- budget -----------------------------------------------------------------------------
    @property
    def api_usage(self) -> tuple[int, int] | None:
        """``(used, max)`` of the org's daily API budget, from the last ``Sforce-Limit-Info``."""
        usage = (self._sf.api_usage or {}).get("api-usage")
        return (int(usage.used), int(usage.total)) if usage else None

    def _over_budget(self) -> bool:
        usage = self.api_usage
        if usage is None:
            return False
        used, total = usage
        return bool(total) and used >= total * (1 - self._settings.reserve_fraction)

    def start_pass(self) -> None:
        """Re-read the daily budget when the last figure said it was spent (one ``limits``
        call), so a paused daemon resumes once the rolling 24-hour window frees budget."""
        if self._over_budget():
            # Its Sforce-Limit-Info header refreshes api_usage (the figure the check reads).
            self._restful("limits", check_budget=False)

    def _check_budget(self) -> None:
        if self._over_budget():
            used, total = self.api_usage or (0, 0)
            raise BudgetExhaustedError(
                SYSTEM,
                f"daily API budget at {used}/{total}; the last "
                f"{self._settings.reserve_fraction:.0%} is reserved for people and other tools",
                code="RESERVE_REACHED",
            )

    # -- calls ------------------------------------------------------------------------------
    def _restful(self, path: str, *, check_budget: bool = True, **kwargs: Any) -> Any:
        """One REST call with retries, one session replay and error translation."""

        def _attempt() -> Any:
            if check_budget:
                self._check_budget()
            self.calls += 1
            try:
                return self._sf.restful(path, timeout=self._timeout, **kwargs)
            except SalesforceError as exc:
                raise translate_salesforce_error(exc, retry_after_s=self._retry_after_s) from None
            except requests.exceptions.SSLError as exc:
                raise FatalApiError(
                    SYSTEM, f"TLS verification failed: {redact(str(exc))}", code="TLS"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise RetryableApiError(SYSTEM, f"connection failed: {redact(str(exc))}") from None

        try:
            return self._retry.call(_attempt)
        except SessionExpiredError:
            fresh = self._token_provider()
            if fresh == self._token:
                raise AuthenticationError(
                    SYSTEM,
                    "session expired or invalid and no new token is available",
                    code="INVALID_SESSION_ID",
                ) from None
            log.info("salesforce_session_renewed")
            self._token = fresh
            register_secret(fresh)
            self._sf = self._connect()
            try:
                return self._retry.call(_attempt)
            except SessionExpiredError:
                raise AuthenticationError(
                    SYSTEM, "session expired again right after renewal", code="INVALID_SESSION_ID"
                ) from None

    def describe(self) -> ObjectSchema:
        """The target object's fields from ``GET sobjects/<object>/describe`` (one call).

        The describe is the first call of a pass: a NOT_FOUND here means the object name or the
        API version is wrong, which no retry fixes. It raises a ConfigError naming the one at
        fault (one more, uncounted call reads the versions the org serves to tell which)."""
        try:
            body = self._restful(f"sobjects/{quote(self._object, safe='')}/describe")
        except RequestRejectedError as exc:
            if exc.code != "NOT_FOUND":
                raise
            raise self._describe_not_found() from None
        return schema_from_describe(body)

    def _describe_not_found(self) -> ConfigError:
        version = self._settings.api_version
        served = self._served_versions()
        if served and version not in served:
            suggestion = "59.0" if "59.0" in served else served[-1]
            return ConfigError(
                ConfigProblem(
                    Location("environment variable CRMBRIDGE_SALESFORCE__API_VERSION"),
                    f"this org does not serve REST API version {version} "
                    f"(it serves {served[0]} to {served[-1]})",
                    hint=f"set it to one of those, e.g. {suggestion} (sObject Collections "
                    "upsert needs 46.0 or later)",
                )
            )
        checked = "" if served else f" (at API version {version}, which may be at fault too)"
        return ConfigError(
            ConfigProblem(
                self._object_location or Location("fields.yaml"),
                f'Salesforce has no object "{self._object}": its describe answered '
                f"NOT_FOUND{checked}",
                hint="object: takes the API name of the sObject crmbridge writes, e.g. Lead",
            )
        )

    def _served_versions(self) -> list[str]:
        """The REST versions the org serves, oldest first (``GET /services/data/``, which the
        org does not count, docs/salesforce-api.md "Limits"); [] when that cannot be read."""
        url = f"https://{self._sf.sf_instance}/services/data/"

        def _attempt() -> Any:
            self.calls += 1
            try:
                response = self._session.get(url, headers=self._sf.headers, timeout=self._timeout)
                response.raise_for_status()
                return response.json()
            except (requests.exceptions.RequestException, ValueError) as exc:
                raise RetryableApiError(
                    SYSTEM, f"cannot read the served versions: {redact(str(exc))}"
                ) from None

        try:
            body = self._retry.call(_attempt)
        except RetryableApiError:
            return []
        if not isinstance(body, list):
            return []
        versions = [str(v.get("version")) for v in body if isinstance(v, dict)]
        return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        """Upsert up to 200 leads in one sObject Collections call; one result per lead, in order.

        Raises ``RequestRejectedError`` when the whole request is refused (a bad value can sink
        every row), ``RetryableApiError`` after the retry budget, and the fatal errors."""
        if not leads:
            return []
        if len(leads) > COLLECTION_MAX:
            raise ValueError(f"at most {COLLECTION_MAX} leads per call")
        records = [{"attributes": {"type": self._object}, **dict(lead.fields)} for lead in leads]
        headers = {"Sforce-Auto-Assign": "TRUE" if self._settings.auto_assign else "FALSE"}
        body = self._restful(
            f"composite/sobjects/{self._object}/{quote(self._external_id, safe='')}",
            method="PATCH",
            json={"allOrNone": False, "records": records},
            headers=headers,
        )
        if not isinstance(body, list) or len(body) != len(leads):
            # Cannot tell which row is which: resend them all rather than guess.
            log.error("salesforce_unexpected_collection_response", rows=len(leads))
            return [
                PushResult(
                    lead.contact_id,
                    success=False,
                    errors=(RecordError("UNEXPECTED_RESPONSE", "response did not match rows"),),
                    transient=True,
                )
                for lead in leads
            ]
        return [_push_result(lead, row) for lead, row in zip(leads, body, strict=True)]

    def current_values(
        self, external_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        """The Leads among ``external_ids`` (values of the external id field), by external id,
        with ``fields`` as Salesforce holds them: one SOQL query (more only past the query
        length limits, or past 2,000 rows). A missing id has no Lead."""
        ext = self._external_id
        selected = ", ".join(dict.fromkeys(["Id", ext, *fields]))
        found: dict[str, dict[str, object]] = {}
        # Names come from the validated map (API-name pattern); values go through soql_literal.
        head = f"SELECT {selected} FROM {self._object} WHERE {ext} IN ("  # noqa: S608
        for literals in soql_in_lists(list(dict.fromkeys(external_ids)), head=head):
            soql = f"{head}{literals})"
            body = self._restful("query", params={"q": soql})
            while True:
                for record in body.get("records") or []:
                    key = record.get(ext)
                    if key is not None:
                        found[str(key)] = {k: v for k, v in record.items() if k != "attributes"}
                next_url = str(body.get("nextRecordsUrl") or "")
                if body.get("done", True) or "/query/" not in next_url:
                    break
                body = self._restful("query/" + next_url.rsplit("/query/", 1)[1])
        return found


def soql_literal(value: str) -> str:
    """``value`` as a SOQL string literal: quoted, with ``\\`` and ``'`` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_in_lists(values: Sequence[str], *, head: str) -> Iterator[str]:
    """``values`` as comma-separated SOQL literals to complete ``head`` (a query ending in
    ``… WHERE <column> IN (``), cut into as few lists as keep each whole query under the
    WHERE-clause and URI limits. A single value over the limits still goes alone."""
    where_base = len(head) - head.index(" WHERE ") - len(" WHERE ") + len(")")
    uri_base = len(quote_plus(head + ")"))
    chunk: list[str] = []
    where, uri = where_base, uri_base
    for value in values:
        literal = soql_literal(value)
        grows_where, grows_uri = len(literal) + 1, len(quote_plus(literal + ","))
        if chunk and (
            where + grows_where > SOQL_WHERE_MAX_CHARS or uri + grows_uri > SOQL_URI_MAX_BYTES
        ):
            yield ",".join(chunk)
            chunk, where, uri = [], where_base, uri_base
        chunk.append(literal)
        where += grows_where
        uri += grows_uri
    if chunk:
        yield ",".join(chunk)


def _push_result(lead: MappedLead, row: Any) -> PushResult:
    if not isinstance(row, dict):
        return PushResult(
            lead.contact_id,
            success=False,
            errors=(RecordError("UNEXPECTED_RESPONSE", repr(row)[:200]),),
            transient=True,
        )
    if row.get("success"):
        return PushResult(
            lead.contact_id,
            success=True,
            salesforce_id=row.get("id"),
            created=bool(row.get("created")),
        )
    errors = tuple(
        RecordError(
            code=str(e.get("statusCode") or e.get("errorCode") or "UNKNOWN"),
            message=str(e.get("message") or ""),
            fields=tuple(e.get("fields") or ()),
        )
        for e in row.get("errors") or [{}]
    )
    return PushResult(
        lead.contact_id,
        success=False,
        salesforce_id=row.get("id"),
        errors=errors,
        transient=all(is_transient_row_error(e) for e in errors),
    )


def _first_error(content: Any) -> tuple[str | None, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), str(content[0].get("message") or "")
    if isinstance(content, dict):
        return content.get("errorCode"), str(content.get("message") or "")
    text = str(content or "")
    return None, text[:300]


def _seconds(value: str | None) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is not used by Salesforce: ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def translate_salesforce_error(  # noqa: PLR0911 - one return per recovery class
    exc: SalesforceError, *, retry_after_s: float | None = None
) -> Exception:
    """Map a simple-salesforce exception to the crmbridge error a caller recovers from."""
    status = int(getattr(exc, "status", 0) or 0)
    code, message = _first_error(getattr(exc, "content", None))
    message = redact(message)
    if isinstance(exc, SalesforceExpiredSession) or code == "INVALID_SESSION_ID":
        return SessionExpiredError(f"{SYSTEM}: {message or 'session expired'}")
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "TotalRequests" in message:
            return BudgetExhaustedError(SYSTEM, message, code=code)
        return RateLimitedError(
            SYSTEM, message, status=status, code=code, retry_after_s=retry_after_s
        )
    if code in FATAL_REQUEST_CODES:
        return FatalApiError(SYSTEM, message, code=code)
    if code in TRANSIENT_REQUEST_CODES or status >= 500:
        return RetryableApiError(
            SYSTEM, message or "server error", status=status, code=code, retry_after_s=retry_after_s
        )
    if isinstance(exc, SalesforceRefusedRequest):
        return FatalApiError(SYSTEM, message, code=code)
    return RequestRejectedError(SYSTEM, message, status=status, code=code)


def schema_from_describe(body: Any) -> ObjectSchema:
    """Build an ``ObjectSchema`` from a describe response (unknown keys are ignored)."""
    fields: dict[str, FieldSpec] = {}
    for raw in body.get("fields") or []:
        fields[raw["name"]] = FieldSpec(
            name=raw["name"],
            type=str(raw.get("type") or "string"),
            length=int(raw.get("length") or 0),
            nillable=bool(raw.get("nillable", True)),
            createable=bool(raw.get("createable", True)),
            updateable=bool(raw.get("updateable", True)),
            defaulted_on_create=bool(raw.get("defaultedOnCreate", False)),
            external_id=bool(raw.get("externalId", False)),
            unique=bool(raw.get("unique", False)),
            restricted_picklist=bool(raw.get("restrictedPicklist", False)),
            picklist_values=tuple(
                PicklistValue(
                    value=str(p.get("value")),
                    label=str(p.get("label") or p.get("value")),
                    active=bool(p.get("active", True)),
                    default=bool(p.get("defaultValue", False)),
                )
                for p in raw.get("picklistValues") or []
            ),
            precision=int(raw.get("precision") or 0),
            scale=int(raw.get("scale") or 0),
        )
    return ObjectSchema(name=str(body.get("name") or "Lead"), fields=fields)
