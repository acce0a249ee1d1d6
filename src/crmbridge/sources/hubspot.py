"""HubSpot as a lead source: incremental pull of contacts through ``hubspot-api-client``.

This module and ``sinks/salesforce.py`` are the only places that touch a client library.

HubSpot quirks this adapter is built around (docs/hubspot-api.md, docs/traps.md), each with why it
matters:

- **10,000-result search cap.** Paging past 10,000 fails with a 400 while the page before still
  offers ``after=10000``. We never page by offset: every query starts at ``after="0"`` and moves
  a keyset cursor instead, so no query can reach the cap however large the backfill.
- **Ties.** Imports stamp thousands of contacts with one ``lastmodifieddate`` millisecond, in an
  undocumented (shuffled) order. The cursor is ``(timestamp, id)``; a tie group is drained with
  its own query sorted by ``hs_object_id``. A full forward page never hands on its last
  timestamp's rows: they may be a random part of a tie, so that timestamp is drained next.
- **EQ on a datetime at ms precision is unverified**, so a tie is selected with ``GTE t`` and
  ``LTE t`` on ``lastmodifieddate``, which holds whichever way EQ behaves.
- **Index lag.** Search shows a write only after a few moments: each pass stops ``index_lag_s``
  in the past (``until_ms``) and takes the rest next pass.
- **``lastmodifieddate``, not ``hs_lastmodifieddate``**: the latter matches nothing on contacts.
- **Search is a POST**, which urllib3's ``Retry`` never retries: retries are ours (``retry.py``).
- **Search has its own per-second limit and no rate-limit headers**: calls are paced here.
- **A 429 is a plain ``ApiException``**; its body names the policy. ``DAILY`` stops the pass
  (waiting cannot help before the reset); ``Retry-After`` is honoured when sent (documented
  only for 477, unverified for 429).
- **No default timeout** in the client: every call passes ``_request_timeout``.
- **An HTTP 200 may not be HubSpot's**: a proxy or gateway in between can answer with its own
  HTML page. Such an answer (or any body that is not a search result or a property list) is
  retried like a 5xx, never parsed into a traceback.
- **Each ``client.crm.contacts.search_api`` access builds a new ApiClient and pool**: built once.
- **Archived contacts** never appear in search, so nothing here can delete sales data.
- **The properties API has its own ``ApiException`` class** (``hubspot.crm.properties``):
  catching the contacts one would miss its errors (docs/hubspot-api.md, "Python client").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import structlog
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest
from hubspot.crm.properties import ApiException as PropertiesApiException

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
)
from crmbridge.model import Cursor, PropertyInfo, SourceContact
from crmbridge.ports import Page
from crmbridge.redaction import redact, register_secret
from crmbridge.retry import RetryPolicy
from crmbridge.settings import HubSpotSettings

SYSTEM = "hubspot"
SEARCH_PAGE_MAX = 200
SEARCH_BODY_MAX_CHARS = 3_000
MODIFIED_PROPERTY = "lastmodifieddate"
ID_PROPERTY = "hs_object_id"
#: Properties every pull reads besides those the mapping and rules ask for.
BASE_PROPERTIES = frozenset({MODIFIED_PROPERTY, ID_PROPERTY, "email"})
#: Edge errors the contract says not to retry (origin unreachable by config, TLS failures).
_PERMANENT_EDGE_STATUSES = frozenset({522, 525, 526})
LOCKED_RETRY_S = 2.0  # 423 Locked: "retry after at least 2 s"
#: Rate-limit headers of non-search answers (docs/hubspot-api.md#rate-limit-headers).
RATE_LIMIT_PREFIX = "X-HubSpot-RateLimit-"
RATE_LIMIT_HEADERS = ("Daily", "Daily-Remaining", "Max", "Remaining")

log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class SearchPacer:
    """Keeps search calls under ``per_s`` a second (search has its own limit and no headers)."""

    def __init__(
        self,
        per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.interval_s = 1.0 / per_s
        self._clock = clock
        self._sleep = sleep
        self._next_at = 0.0

    def wait(self) -> None:
        now = self._clock()
        if now < self._next_at:
            self._sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self.interval_s


def parse_hubspot_datetime_ms(value: str | None) -> int | None:
    """``"2024-09-11T13:27:39.356Z"`` (or epoch-ms digits) → epoch ms; ``None`` if unreadable."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


class HubSpotSource:
    """The ``LeadSource`` port on HubSpot CRM v3 contacts search (keyset, never offsets)."""

    def __init__(
        self,
        settings: HubSpotSettings,
        retry: RetryPolicy,
        *,
        pacer: SearchPacer | None = None,
    ) -> None:
        token = settings.access_token.get_secret_value() if settings.access_token else ""
        register_secret(token)
        kwargs: dict[str, Any] = {"access_token": token, "host": settings.base_url}
        if settings.ca_bundle is not None:
            kwargs["ssl_ca_cert"] = str(settings.ca_bundle)
        self._client = HubSpot(**kwargs)
        self._search_api = self._client.crm.contacts.search_api
        self._settings = settings
        self._retry = retry
        self._pacer = pacer or SearchPacer(settings.search_per_s)
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self.page_size = min(settings.page_size, SEARCH_PAGE_MAX)
        self.calls = 0
        #: The ``X-HubSpot-RateLimit-*`` figures of the last answer that carried them, by
        #: header suffix (``Daily``, ``Daily-Remaining``, ``Max``, ``Remaining``). Search
        #: answers carry none (docs/hubspot-api.md#rate-limit-headers), so this stays empty
        #: until another call (the properties call, an error) is answered.
        self.rate_limits: dict[str, int] = {}
        self._was_full = False

    # -- the port ---------------------------------------------------------------------------
    def pull(self, since: Cursor, until_ms: int, properties: frozenset[str]) -> Iterator[Page]:
        """Yield pages of contacts modified after ``since`` up to ``until_ms``, in cursor order.

        Keyset loop (docs/hubspot-api.md#keyset-sync), one query per page, every query at
        ``after="0"``:
        ask for what lies beyond the cursor sorted by ``lastmodifieddate``. A full page hands
        on only its rows before its last timestamp (those at the last timestamp may be a
        shuffled part of a tie) and the next query starts at that timestamp, so about one row
        a page is read twice. A page that is one timestamp throughout is a tie larger than a
        page: it is drained by ``hs_object_id`` instead."""
        wanted = sorted(properties | BASE_PROPERTIES)
        check_search_body_size(wanted)
        cursor = since
        while True:
            groups = [
                [
                    _filter(
                        MODIFIED_PROPERTY,
                        "GTE" if cursor.last_id == 0 else "GT",
                        cursor.modified_at_ms,
                    ),
                    _filter(MODIFIED_PROPERTY, "LTE", until_ms),
                ]
            ]
            if cursor.last_id:
                groups.append(self._tie_filters(cursor))
            found = self._search(groups, MODIFIED_PROPERTY, wanted)
            rows = sorted(
                (c for c in found if not cursor.covers(c)),
                key=lambda c: (c.modified_at_ms, c.numeric_id),
            )
            if not rows:
                return
            if not self._was_full:
                # Short page: everything up to ``until_ms`` is here, its last tie included.
                yield Page(rows, _cursor_after(rows))
                return
            last_ms = rows[-1].modified_at_ms
            before = [c for c in rows if c.modified_at_ms < last_ms]
            if before:
                yield Page(before, _cursor_after(before))
                cursor = Cursor(last_ms, 0)
                continue
            # One timestamp fills the page: a tie larger than a page, drained by id.
            start = cursor if cursor.modified_at_ms == last_ms else Cursor(last_ms, 0)
            drained = False
            for page in self._drain(start, wanted):
                drained = True
                yield page
                cursor = page.cursor
            if not drained:
                # Search contradicted itself (the tie vanished between two calls): stop here
                # rather than loop; the next pass starts again from the committed cursor.
                log.warning("hubspot_tie_vanished", modified_at_ms=last_ms)
                return

    @staticmethod
    def _tie_filters(cursor: Cursor) -> list[dict[str, str]]:
        # EQ on a datetime at ms precision is unverified: GTE + LTE holds either way.
        return [
            _filter(MODIFIED_PROPERTY, "GTE", cursor.modified_at_ms),
            _filter(MODIFIED_PROPERTY, "LTE", cursor.modified_at_ms),
            _filter(ID_PROPERTY, "GT", cursor.last_id),
        ]

    def _drain(self, cursor: Cursor, wanted: list[str]) -> Iterator[Page]:
        """Every contact at exactly ``cursor.modified_at_ms`` with an id above ``last_id``."""
        at = cursor.modified_at_ms
        last_id = cursor.last_id
        while True:
            found = self._search([self._tie_filters(Cursor(at, last_id))], ID_PROPERTY, wanted)
            full = self._was_full
            # Guard against a contact re-stamped mid-drain: keep only this ms, in id order.
            rows = sorted((c for c in found if c.modified_at_ms == at), key=lambda c: c.numeric_id)
            if rows:
                last_id = rows[-1].numeric_id
                yield Page(rows, Cursor(at, last_id))
            if not full or not rows:
                return

    # -- metadata ---------------------------------------------------------------------------
    def contact_properties(self) -> list[PropertyInfo]:
        """The portal's contact property definitions (one ``GET /crm/v3/properties/contacts``,
        retried like search), archived ones aside. Raises the crmbridge errors ``pull`` does."""
        api = self._client.crm.properties.core_api

        def _call() -> list[dict[str, Any]]:
            return self._send(
                lambda: api.get_all(
                    object_type="contacts", _preload_content=False, _request_timeout=self._timeout
                ),
                property_results,
            )

        results = self._retry.call(_call)
        return [info for raw in results if (info := _property_from_json(raw)) is not None]

    def _send(self, request: Callable[[], Any], read: Callable[[bytes, str | None], _T]) -> _T:
        """One API call (counted) with the client's errors translated and its answer ``read``
        from the raw body and content type."""
        self.calls += 1
        try:
            response = request()
        except (ApiException, PropertiesApiException) as exc:
            self._note_rate_limits(exc.headers)
            raise translate_api_exception(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise translate_connection_error(exc) from None
        self._note_rate_limits(response.headers)
        try:
            return read(response.data, response.headers.get("Content-Type"))
        finally:
            response.release_conn()

    def _note_rate_limits(self, headers: Any) -> None:
        """Keep the rate-limit figures an answer's headers give (any that are numbers)."""
        if not headers:
            return
        figures = {}
        for suffix in RATE_LIMIT_HEADERS:
            value = headers.get(RATE_LIMIT_PREFIX + suffix)
            if value is not None and str(value).strip().isdigit():
                figures[suffix] = int(str(value).strip())
        if figures:
            self.rate_limits = figures

    # -- one search call --------------------------------------------------------------------
    def _search(
        self, groups: list[list[dict[str, str]]], sort: str, properties: list[str]
    ) -> list[SourceContact]:
        """One search call (retried); sets ``_was_full`` when HubSpot returned a full page."""
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": filters} for filters in groups],
            # Object form: the client types sorts as list[str], but a string sort is ignored.
            sorts=[{"propertyName": sort, "direction": "ASCENDING"}],
            properties=properties,
            limit=self.page_size,
            after="0",
        )

        def _call() -> list[dict[str, Any]]:
            self._pacer.wait()
            return self._send(
                lambda: self._search_api.do_search(
                    public_object_search_request=request,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                ),
                search_results,
            )

        results = self._retry.call(_call)
        self._was_full = len(results) >= self.page_size
        contacts = []
        for raw in results:
            contact = _contact_from_json(raw)
            if contact is not None:
                contacts.append(contact)
        return contacts


def search_results(data: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """The ``results`` of a search answer (HTTP 200), each a JSON object with an object (or
    null) ``properties``. Anything else (a proxy's HTML page, other JSON, bytes that are not
    UTF-8) is a ``RetryableApiError``: the same request is likely to be answered properly
    later. The message names the content type and size, never the body (a proxy's page may
    quote the request, token included)."""
    results = _results(data)
    if results is None or not all(isinstance(raw.get("properties") or {}, dict) for raw in results):
        raise _not_an_answer("search", "a search result", data, content_type)
    return results


def property_results(data: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """The ``results`` of a properties answer (HTTP 200), each a JSON object; anything else is
    a ``RetryableApiError``, as for :func:`search_results`."""
    results = _results(data)
    if results is None:
        raise _not_an_answer("the properties API", "a property list", data, content_type)
    return results


def _results(data: bytes) -> list[dict[str, Any]] | None:
    """A JSON object's ``results`` when it is a list of objects (missing: none), else None."""
    try:
        body = json.loads(data)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None
    results = body.get("results", []) if isinstance(body, dict) else None
    if isinstance(results, list) and all(isinstance(raw, dict) for raw in results):
        return results
    return None


def _not_an_answer(
    call: str, expected: str, data: bytes, content_type: str | None
) -> RetryableApiError:
    return RetryableApiError(
        SYSTEM,
        f"{call} answered HTTP 200 with what is not {expected} "
        f"({content_type or 'no content type'}, {len(data)} bytes; a proxy's page?)",
    )


def check_search_body_size(properties: list[str]) -> None:
    """Refuse, with a hint, a property list that would push a search body past 3,000 characters
    (HubSpot answers such a request with a 400 on every call)."""
    widest = {
        "filterGroups": [
            {"filters": [_filter(MODIFIED_PROPERTY, "GT", 10**13)] * 2},
            {"filters": [_filter(MODIFIED_PROPERTY, "GTE", 10**13)] * 3},
        ],
        "sorts": [{"propertyName": MODIFIED_PROPERTY, "direction": "ASCENDING"}],
        "properties": properties,
        "limit": SEARCH_PAGE_MAX,
        "after": "0",
    }
    size = len(json.dumps(widest))
    if size > SEARCH_BODY_MAX_CHARS:
        raise ConfigError(
            ConfigProblem(
                Location("mappings/"),
                f"the {len(properties)} HubSpot properties read by the field map and the rules "
                f"make a search request of {size} characters; HubSpot refuses more than "
                f"{SEARCH_BODY_MAX_CHARS}",
                hint="map fewer properties, or shorten the list of properties the rules read",
            )
        )


def _filter(name: str, operator: str, value: int) -> dict[str, str]:
    return {"propertyName": name, "operator": operator, "value": str(value)}


def _cursor_after(rows: list[SourceContact]) -> Cursor:
    """The cursor once ``rows`` (sorted by timestamp, holding their last tie whole) are done."""
    last_ms = rows[-1].modified_at_ms
    return Cursor(last_ms, max(c.numeric_id for c in rows if c.modified_at_ms == last_ms))


def _property_from_json(raw: Any) -> PropertyInfo | None:
    if not isinstance(raw, dict) or raw.get("archived") or not raw.get("name"):
        return None
    metadata = raw.get("modificationMetadata") or {}
    return PropertyInfo(
        name=str(raw["name"]),
        label=str(raw.get("label") or raw["name"]),
        type=str(raw.get("type") or "string").lower(),
        field_type=str(raw.get("fieldType") or "text"),
        options=tuple(
            (str(o.get("value")), str(o.get("label") or o.get("value")))
            for o in raw.get("options") or []
            if isinstance(o, dict) and not o.get("hidden")
        ),
        read_only=bool(metadata.get("readOnlyValue") or raw.get("calculated")),
        hubspot_defined=bool(raw.get("hubspotDefined", True)),
    )


def _contact_from_json(raw: dict[str, Any]) -> SourceContact | None:
    properties = {
        str(k): (None if v is None else str(v)) for k, v in (raw.get("properties") or {}).items()
    }
    modified = parse_hubspot_datetime_ms(properties.get(MODIFIED_PROPERTY)) or (
        parse_hubspot_datetime_ms(raw.get("updatedAt"))
    )
    contact_id = str(raw.get("id") or properties.get(ID_PROPERTY) or "")
    if modified is None or not contact_id.isdigit():
        # Cannot be placed on the cursor; HubSpot always sends both, so this is a loud anomaly.
        log.error("hubspot_contact_unplaceable", contact_id=contact_id, raw_keys=sorted(raw))
        return None
    return SourceContact(
        id=contact_id,
        properties=properties,
        modified_at_ms=modified,
        archived=bool(raw.get("archived", False)),
    )


def _body_json(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after_s(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _tls_failed(detail: object) -> FatalApiError:
    """Waiting does not fix trust: a person must set the CA bundle."""
    return FatalApiError(
        SYSTEM,
        f"TLS verification failed ({redact(str(detail))}); "
        "set CRMBRIDGE_HUBSPOT__CA_BUNDLE to the CA to trust",
        code="TLS",
    )


def translate_connection_error(exc: urllib3.exceptions.HTTPError) -> Exception:
    """A refused certificate is fatal; other connection losses are retried."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib3.exceptions.SSLError) or isinstance(
        reason, urllib3.exceptions.SSLError
    ):
        return _tls_failed(exc)
    return RetryableApiError(SYSTEM, f"connection failed: {redact(str(exc))}")


def translate_api_exception(exc: ApiException) -> Exception:  # noqa: PLR0911 - one return per class
    """Map a hubspot-api-client exception to the crmbridge error a caller recovers from."""
    status = int(exc.status or 0)
    body = _body_json(exc.body)
    message = redact(str(body.get("message") or exc.reason or "no message"))
    category = body.get("category") or body.get("errorType")
    correlation = body.get("correlationId")
    if correlation:
        message = f"{message} [correlationId {correlation}]"
    retry_after = _retry_after_s(exc.headers)
    if status == 0:
        if "SSLError" in message or "CERTIFICATE_VERIFY_FAILED" in message:
            return _tls_failed(message)
        return RetryableApiError(SYSTEM, message)
    if status == 401:
        return AuthenticationError(SYSTEM, message, code=category)
    if status == 403:
        return FatalApiError(SYSTEM, message, code=category)
    if status == 429:
        policy = body.get("policyName")
        if policy == "DAILY":
            return BudgetExhaustedError(SYSTEM, message, code="DAILY")
        if retry_after is None:
            # Secondly: about a second; ten-secondly: let the window drain.
            retry_after = 10.0 if policy == "TEN_SECONDLY_ROLLING" else 1.0
        return RateLimitedError(
            SYSTEM, message, status=status, code=policy, retry_after_s=retry_after
        )
    if status == 423:
        return RetryableApiError(
            SYSTEM, message, status=status, retry_after_s=max(retry_after or 0, LOCKED_RETRY_S)
        )
    if status in _PERMANENT_EDGE_STATUSES:
        return RequestRejectedError(SYSTEM, message, status=status, code=category)
    if status == 477 or status >= 500:
        return RetryableApiError(SYSTEM, message, status=status, retry_after_s=retry_after)
    return RequestRejectedError(SYSTEM, message, status=status, code=category)
