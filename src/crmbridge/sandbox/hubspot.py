"""A local HubSpot CRM v3 contacts API: an in-memory portal served over loopback HTTP.

It follows ``api-contracts.md`` section 3 closely enough that ``hubspot-api-client`` 12.0.0 talks to
it unchanged (``HubSpot(access_token=..., host=sim.start())``) and that the traps of section 5
happen here as they do on the real service. Numbers below are checklist 3.9 items.

Modelled:
- Bearer-token auth; anything else is a 401 ``INVALID_AUTHENTICATION`` JSON body (9).
- ``GET /crm/v3/objects/contacts``: ``limit`` (default 10, above 100 a 400), ``after`` = next id,
  ``properties`` repeated or comma-separated (10), unknown names dropped, unset values ``null`` (5),
  ``archived=true`` lists only archived contacts (4). Asked-for properties always come with
  ``hs_object_id``, ``createdate`` and ``lastmodifieddate``. A ``""`` the portal was seeded with
  is returned as ``""`` (imports leave those; clients must treat both as empty), while a value
  cleared through the API reads back as ``null``.
- ``GET /crm/v3/objects/contacts/{id}`` and ``PATCH`` of the same path (``idProperty=email``
  allowed); an unknown or archived id is the documented 404 body (9).
- ``POST .../search`` (see ``_hubspot_search``): filters, 5/6/18 filter limits, one object sort
  (a string sort is ignored), ``limit`` <= 200, 3,000-character bodies, the 10,000-result cap with
  the page before still offering ``after="10000"`` and the true ``total`` (1, 7); ties shuffled per
  request (2); archived contacts hidden (4); index lag: a write becomes searchable
  ``search_index_lag_ms`` after it happened, until then search sees the previous version (3).
- ``POST .../batch/read`` and ``.../batch/update``: 100-input cap, 207 with ``OBJECT_NOT_FOUND`` for
  missing ids, duplicate ids (update) or any invalid value (unknown/read-only property, enumeration
  option) fail the whole call with a 400; results come back in random order (order unverified) (6).
  An id that is not numeric and has no ``idProperty`` is skipped silently, as reported.
- ``GET /crm/v3/properties/contacts`` (and ``/{name}``): the standard properties, section 2's custom
  ones and the default enumeration options, validated on every write.
- ``lifecyclestage`` only moves forward: a backward write is ignored (the real answer is
  undocumented, so a client must read back); ``""`` clears any property.
- Rate limits when :class:`HubSpotLimits` sets them (8): a 10-second rolling burst budget and a
  daily budget (reset at UTC midnight, not the account time zone) for non-search calls, whose
  responses, errors included, carry the ``X-HubSpot-RateLimit-*`` headers of the configured
  budgets; a per-second budget for search, whose responses never carry them. 429 bodies as in
  3.6; ``Retry-After`` only when a test injects it. 401s and unknown routes carry no headers.
- Injected faults (``sim.faults``, :meth:`HubSpotSimulator.inject_status`) answer before auth and
  limits, spend no budget (non-search ones still show the headers) and are counted in
  ``sim.calls`` like every other request.

Not modelled: ``propertiesWithHistory`` and ``associations`` (accepted and ignored); create,
archive and merge endpoints (use :class:`HubSpotPortal` directly); scopes (403); 414 for long URLs;
webhooks; property groups and property creation over HTTP; portals adding lifecycle stages;
multi-select properties. Every value is stored as a string or ``None``.
"""

from __future__ import annotations

import bisect
import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from crmbridge.sandbox._hubspot_search import SearchRequestError, SearchRow, parse_search_request
from crmbridge.sandbox._server import CallLog, Fault, FaultPlan, Request, Response, SimulatorServer

DEFAULT_ACCESS_TOKEN = "sandbox-hubspot-token"  # noqa: S105 - a public sandbox value, not a secret
FIRST_CONTACT_ID = 1001
LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100
BATCH_INPUT_MAX = 100
BATCH_INPUT_MAX_WITH_HISTORY = 50
BURST_WINDOW_MS = 10_000
SEARCH_WINDOW_MS = 1_000
DAY_MS = 86_400_000
#: Versions kept per contact so search can lag behind writes; more writes inside one lag window
#: than this make the contact briefly absent from search.
VERSIONS_KEPT = 8
CONTACTS_PATH = "/crm/v3/objects/contacts"
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
SYSTEM_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
RATE_LIMIT_POLICIES = ("TEN_SECONDLY_ROLLING", "DAILY", "SECONDLY")
INDUSTRIES = (
    "MANUFACTURING", "MACHINERY", "LOGISTICS_AND_SUPPLY_CHAIN", "RETAIL", "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "AUTOMOTIVE", "FOOD_PRODUCTION",
    "ELECTRICAL_ELECTRONIC_MANUFACTURING", "CONSTRUCTION", "CHEMICALS", "WHOLESALE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES", "TRANSPORTATION_TRUCKING_RAILROAD",
)  # fmt: skip
LIFECYCLE_STAGES = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
    "customer", "evangelist", "other",
)  # fmt: skip
LEAD_STATUSES = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
    "CONNECTED", "BAD_TIMING",
)  # fmt: skip

PropertyValue = str | None


def iso_ms(epoch_ms: int) -> str:
    """HubSpot's datetime string: ISO-8601 UTC with milliseconds (``2024-09-11T13:27:39.356Z``)."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class PropertyDef:
    """One contact property definition, as ``GET /crm/v3/properties/contacts`` describes it."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group_name: str = "contactinformation"
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (internal value, label), in display order
    hubspot_defined: bool = True
    read_only: bool = False

    def to_api(self, display_order: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": label, "value": value, "displayOrder": index, "hidden": False}
                for index, (value, label) in enumerate(self.options)
            ],
            "displayOrder": display_order,
            "hubspotDefined": self.hubspot_defined,
            "hasUniqueValue": False,
            "calculated": False,
            "externalOptions": False,
            "hidden": False,
            "formField": not self.read_only,
            "archived": False,
            "createdAt": "2019-08-06T02:41:08.029Z",
            "updatedAt": "2024-01-15T09:00:00.000Z",
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }


def _enum(name: str, label: str, values: Sequence[str], labels: Sequence[str] = ()) -> PropertyDef:
    shown = labels or [value.replace("_", " ").title() for value in values]
    return PropertyDef(
        name, label, "enumeration", "select", options=tuple(zip(values, shown, strict=True))
    )


def _custom(name: str, label: str, field_type: str = "text") -> PropertyDef:
    return PropertyDef(
        name, label, field_type=field_type, group_name="lead_qualification", hubspot_defined=False
    )


STANDARD_PROPERTIES: tuple[PropertyDef, ...] = (
    PropertyDef("email", "Email"),
    PropertyDef("firstname", "First Name"),
    PropertyDef("lastname", "Last Name"),
    PropertyDef("phone", "Phone Number", field_type="phonenumber"),
    PropertyDef("mobilephone", "Mobile Phone Number", field_type="phonenumber"),
    PropertyDef("company", "Company Name"),
    PropertyDef("jobtitle", "Job Title"),
    PropertyDef("website", "Website URL"),
    PropertyDef("address", "Street Address"),
    PropertyDef("city", "City"),
    PropertyDef("state", "State/Region"),
    PropertyDef("zip", "Postal Code"),
    PropertyDef("country", "Country/Region"),
    PropertyDef("annualrevenue", "Annual Revenue"),
    PropertyDef("message", "Message", field_type="textarea"),
    _enum("industry", "Industry", INDUSTRIES),
    _enum(
        "lifecyclestage",
        "Lifecycle Stage",
        LIFECYCLE_STAGES,
        (
            "Subscriber",
            "Lead",
            "Marketing Qualified Lead",
            "Sales Qualified Lead",
            "Opportunity",
            "Customer",
            "Evangelist",
            "Other",
        ),
    ),
    _enum("hs_lead_status", "Lead Status", LEAD_STATUSES),
    PropertyDef("hs_object_id", "Record ID", "number", "number", read_only=True),
    PropertyDef("createdate", "Create Date", "datetime", "date", read_only=True),
    PropertyDef("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only=True),
    _custom("budget", "Budget (USD)"),
    _custom("timeline_days", "Timeline (days)"),
    _custom("need", "Need", "textarea"),
    _custom("pain_point", "Pain point"),
)


@dataclass(frozen=True, slots=True)
class _Version:
    row: SearchRow  # the contact as this write left it (also what search matches against)
    archived_ms: int | None
    written_ms: int  # when the write happened: search sees it from written_ms + lag


@dataclass(slots=True)
class _Record:
    versions: list[_Version]

    @property
    def current(self) -> _Version:
        return self.versions[-1]

    def push(self, version: _Version) -> None:
        self.versions.append(version)
        del self.versions[:-VERSIONS_KEPT]


class HubSpotPortal:
    """In-memory contacts of one HubSpot portal; every method is thread-safe.

    Ids are numeric strings counting up from ``first_id``. Values are stored as strings or ``None``
    exactly as given (so ``""`` from an import stays ``""``); the HTTP write paths turn ``""`` into
    ``None`` (a clear). ``len(portal)`` counts archived contacts too.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int] | None = None,
        *,
        first_id: int = FIRST_CONTACT_ID,
        properties: Iterable[PropertyDef] = STANDARD_PROPERTIES,
    ) -> None:
        self.clock_ms: Callable[[], int] = clock_ms or _wall_clock_ms
        self._lock = threading.RLock()
        self._next_id = first_id
        self._records: dict[int, _Record] = {}
        self._ids: list[int] = []  # ascending
        self._schema: dict[str, PropertyDef] = {prop.name: prop for prop in properties}

    # --- schema -------------------------------------------------------------------------------
    def define_property(self, prop: PropertyDef) -> None:
        """Add (or replace) a property definition, as a portal admin would."""
        with self._lock:
            self._schema[prop.name] = prop

    @property
    def schema(self) -> dict[str, PropertyDef]:
        with self._lock:
            return dict(self._schema)

    def property_types(self) -> dict[str, str]:
        with self._lock:
            return {name: prop.type for name, prop in self._schema.items()}

    # --- writes -------------------------------------------------------------------------------
    def add_contact(
        self,
        properties: Mapping[str, object],
        *,
        id: str | None = None,
        modified_at_ms: int | None = None,
        created_at_ms: int | None = None,
        archived: bool = False,
    ) -> str:
        """Store a new contact and return its id.

        ``modified_at_ms`` defaults to the clock, ``created_at_ms`` to ``modified_at_ms``. Raises
        ``ValueError`` for an unknown or read-only property or a taken id.
        """
        with self._lock:
            now = self.clock_ms()
            num = self._next_id if id is None else int(id)
            if num in self._records:
                raise ValueError(f"contact {num} already exists")
            modified = now if modified_at_ms is None else modified_at_ms
            created = modified if created_at_ms is None else created_at_ms
            row = SearchRow(str(num), num, created, modified, self._clean(properties))
            self._records[num] = _Record([_Version(row, modified if archived else None, modified)])
            if not self._ids or num > self._ids[-1]:
                self._ids.append(num)
            else:
                bisect.insort(self._ids, num)
            self._next_id = max(self._next_id, num + 1)
            return row.id

    def update_contact(
        self,
        id: str,
        properties: Mapping[str, object],
        *,
        modified_at_ms: int | None = None,
    ) -> None:
        """Merge ``properties`` in and bump ``lastmodifieddate``; ``KeyError`` if unknown."""
        with self._lock:
            record = self._record(id)
            now = self.clock_ms()
            old = record.current
            merged = {**old.row.properties, **self._clean(properties)}
            modified = now if modified_at_ms is None else modified_at_ms
            row = SearchRow(old.row.id, old.row.num, old.row.created_ms, modified, merged)
            record.push(_Version(row, old.archived_ms, modified))

    def archive_contact(self, id: str) -> None:
        """Archive the contact (idempotent); ``KeyError`` if unknown."""
        with self._lock:
            record = self._record(id)
            old = record.current
            if old.archived_ms is None:
                now = self.clock_ms()
                record.push(_Version(old.row, now, now))

    def _record(self, id: str) -> _Record:
        record = self._records.get(int(id)) if str(id).isdigit() else None
        if record is None:
            raise KeyError(id)
        return record

    def _clean(self, properties: Mapping[str, object]) -> dict[str, PropertyValue]:
        cleaned: dict[str, PropertyValue] = {}
        for name, value in properties.items():
            prop = self._schema.get(name)
            if prop is None or prop.read_only:
                raise ValueError(f"unknown or read-only contact property {name!r}")
            if value is None:
                cleaned[name] = None
            elif isinstance(value, bool):
                cleaned[name] = "true" if value else "false"
            else:
                cleaned[name] = str(value)
        return cleaned

    # --- reads --------------------------------------------------------------------------------
    def get(self, id: str) -> dict[str, Any] | None:
        """The stored contact in API shape with every stored property, or ``None``."""
        with self._lock:
            try:
                version = self._record(id).current
            except KeyError:
                return None
            names = sorted({*version.row.properties, *SYSTEM_PROPERTIES})
            return render_contact(version.row, version.archived_ms, names)

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every contact (archived ones included), by id, in id order."""
        with self._lock:
            return {str(num): record for num in self._ids if (record := self.get(str(num)))}

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __contains__(self, id: object) -> bool:
        with self._lock:
            return str(id).isdigit() and int(str(id)) in self._records

    def search_rows(self, *, visible_at_ms: int | None = None) -> list[SearchRow]:
        """Unarchived contacts as the search index sees them at ``visible_at_ms`` (``None``: now).

        A contact whose every kept version was written after ``visible_at_ms`` is absent.
        """
        with self._lock:
            rows: list[SearchRow] = []
            for num in self._ids:
                version = self._visible(self._records[num], visible_at_ms)
                if version is not None and version.archived_ms is None:
                    rows.append(version.row)
            return rows

    @staticmethod
    def _visible(record: _Record, at_ms: int | None) -> _Version | None:
        if at_ms is None:
            return record.current
        for version in reversed(record.versions):
            if version.written_ms <= at_ms:
                return version
        return None

    def page(
        self, after: int, limit: int, *, archived: bool
    ) -> tuple[list[tuple[SearchRow, int | None]], int | None]:
        """Up to ``limit`` contacts with id >= ``after`` (archived or not, as asked), next id."""
        with self._lock:
            found: list[tuple[SearchRow, int | None]] = []
            for index in range(bisect.bisect_left(self._ids, after), len(self._ids)):
                num = self._ids[index]
                version = self._records[num].current
                if (version.archived_ms is not None) is not archived:
                    continue
                if len(found) == limit:
                    return found, num
                found.append((version.row, version.archived_ms))
            return found, None

    def lookup(
        self, key: str, *, archived: bool = False, id_property: str | None = None
    ) -> tuple[SearchRow, int | None] | None:
        """The current version of a contact by id (or by e-mail), if its archived state matches."""
        with self._lock:
            if id_property == "email":
                wanted = key.strip().lower()
                candidates = [
                    r.current
                    for r in self._records.values()
                    if (r.current.row.properties.get("email") or "").lower() == wanted
                ]
            else:
                record = self._records.get(int(key)) if key.isdigit() else None
                candidates = [record.current] if record else []
            for version in candidates:
                if (version.archived_ms is not None) is archived:
                    return version.row, version.archived_ms
            return None


def render_contact(row: SearchRow, archived_ms: int | None, names: Iterable[str]) -> dict[str, Any]:
    """A contact as the API returns it: the named properties (``None`` when unset) plus metadata."""
    properties: dict[str, PropertyValue] = {}
    for name in names:
        if name == "hs_object_id":
            properties[name] = row.id
        elif name == "createdate":
            properties[name] = iso_ms(row.created_ms)
        elif name == "lastmodifieddate":
            properties[name] = iso_ms(row.modified_ms)
        else:
            properties[name] = row.properties.get(name)
    body: dict[str, Any] = {
        "id": row.id,
        "properties": properties,
        "createdAt": iso_ms(row.created_ms),
        "updatedAt": iso_ms(row.modified_ms),
        "archived": archived_ms is not None,
    }
    if archived_ms is not None:
        body["archivedAt"] = iso_ms(archived_ms)
    return body


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSpotLimits:
    """Rate-limit budgets (3.6); ``None`` means unlimited, the default for tests and the demo."""

    burst_per_10s: int | None = None
    search_per_s: int | None = None
    daily: int | None = None


def _correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error shape (3.7)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": _correlation_id(),
        "category": category,
        **extra,
    }


def rate_limit_body(policy: str) -> dict[str, Any]:
    """The 429 body of ``policy`` (3.6): ``TEN_SECONDLY_ROLLING``, ``DAILY`` or ``SECONDLY``."""
    if policy not in RATE_LIMIT_POLICIES:
        raise ValueError(f"unknown rate-limit policy {policy!r}; use one of {RATE_LIMIT_POLICIES}")
    body: dict[str, Any] = {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": _correlation_id(),
        "policyName": policy,
    }
    if policy == "TEN_SECONDLY_ROLLING":
        body["groupName"] = "publicapi:private-app:sandbox"
    return body


_STATUS_BODIES: dict[int, tuple[str, str]] = {
    423: ("The resource is locked. Retry the request later.", "LOCKED"),
    500: ("internal error", "INTERNAL_ERROR"),
    502: ("Bad Gateway", "BAD_GATEWAY"),
    503: ("Service Unavailable: please try again later.", "SERVICE_UNAVAILABLE"),
}


class _RateLimiter:
    """Rolling 10-second and 1-second windows and a UTC-day counter, on the portal clock."""

    def __init__(self, limits: HubSpotLimits, clock_ms: Callable[[], int]) -> None:
        self._limits = limits
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._burst: deque[int] = deque()
        self._search: deque[int] = deque()
        self._day = -1
        self._daily_used = 0

    def take_general(self) -> tuple[str | None, dict[str, str]]:
        """Spend one non-search call; returns the policy that refused it (if any) and headers."""
        with self._lock:
            now = self._expire()
            daily, burst = self._limits.daily, self._limits.burst_per_10s
            policy = None
            if daily is not None and self._daily_used >= daily:
                policy = "DAILY"
            elif burst is not None and len(self._burst) >= burst:
                policy = "TEN_SECONDLY_ROLLING"
            else:
                self._daily_used += 1
                self._burst.append(now)
            return policy, self._headers(now)

    def take_search(self) -> bool:
        """Spend one search call; False when the per-second budget is used up."""
        with self._lock:
            now = self._expire()
            limit = self._limits.search_per_s
            if limit is not None and len(self._search) >= limit:
                return False
            self._search.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._burst.clear()
            self._search.clear()
            self._day, self._daily_used = -1, 0

    def headers(self) -> dict[str, str]:
        with self._lock:
            return self._headers(self._expire())

    def _expire(self) -> int:
        now = self._clock_ms()
        while self._burst and self._burst[0] <= now - BURST_WINDOW_MS:
            self._burst.popleft()
        while self._search and self._search[0] <= now - SEARCH_WINDOW_MS:
            self._search.popleft()
        if now // DAY_MS != self._day:
            self._day, self._daily_used = now // DAY_MS, 0
        return now

    def _headers(self, now: int) -> dict[str, str]:
        headers: dict[str, str] = {}
        daily, burst = self._limits.daily, self._limits.burst_per_10s
        prefix = "X-HubSpot-RateLimit-"
        if daily is not None:
            headers[prefix + "Daily"] = str(daily)
            headers[prefix + "Daily-Remaining"] = str(max(0, daily - self._daily_used))
        if burst is not None:
            secondly = max(1, burst // 10)
            last_second = sum(1 for stamp in self._burst if stamp > now - 1000)
            headers[prefix + "Interval-Milliseconds"] = str(BURST_WINDOW_MS)
            headers[prefix + "Max"] = str(burst)
            headers[prefix + "Remaining"] = str(max(0, burst - len(self._burst)))
            headers[prefix + "Secondly"] = str(secondly)
            headers[prefix + "Secondly-Remaining"] = str(max(0, secondly - last_second))
        return headers


class _ApiError(Exception):
    """Raised inside a route handler to answer with ``response`` instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _bad_request(message: str, **extra: Any) -> _ApiError:
    return _ApiError(Response(400, error_body(message, "VALIDATION_ERROR", **extra)))


def _not_found(key: str) -> _ApiError:
    body = error_body(
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        context={"id": [key]},
    )
    return _ApiError(Response(404, body))


def _query_names(query: Mapping[str, list[str]], key: str) -> list[str] | None:
    """A list parameter sent repeated (``?p=a&p=b``, the client) or comma-separated (the docs)."""
    if key not in query:
        return None
    return [name.strip() for value in query[key] for name in value.split(",") if name.strip()]


def _query_flag(query: Mapping[str, list[str]], key: str) -> bool:
    values = query.get(key) or [""]
    return values[-1].strip().lower() == "true"  # the client sends "True"


def _query_int(query: Mapping[str, list[str]], key: str, default: int) -> int:
    values = query.get(key)
    if not values or not values[-1].strip():
        return default
    try:
        return int(values[-1])
    except ValueError as exc:
        raise _bad_request(f"Invalid value for {key}: {values[-1]!r}") from exc


def _invalid_value(name: str, error: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


RouteHandler = Callable[[Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    label: str
    handler: RouteHandler
    search: bool = False


class HubSpotSimulator:
    """Serve a :class:`HubSpotPortal` as the HubSpot CRM v3 contacts API on loopback.

    ``start()`` returns the base URL to pass as ``host=`` to ``hubspot.HubSpot``; ``stop()`` (or
    leaving the ``with`` block) shuts the server down. ``calls`` counts requests by route label
    (``"POST /crm/v3/objects/contacts/search"``, ``"PATCH /crm/v3/objects/contacts/{id}"`` …);
    ``faults`` answers matching requests with injected responses first.
    """

    def __init__(
        self,
        portal: HubSpotPortal | None = None,
        *,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        limits: HubSpotLimits | None = None,
        search_index_lag_ms: int = 0,
        shuffle_ties: bool = True,
        random_seed: int = 0,
        port: int = 0,
    ) -> None:
        self.portal = portal if portal is not None else HubSpotPortal()
        self.access_token = access_token
        self.limits = limits or HubSpotLimits()
        self.search_index_lag_ms = search_index_lag_ms
        self.shuffle_ties = shuffle_ties
        self.calls = CallLog()
        self.faults = FaultPlan()
        self._rng = random.Random(random_seed)
        self._rng_lock = threading.Lock()
        self._limiter = _RateLimiter(self.limits, self._now_ms)
        self._server = SimulatorServer(self._handle, port=port)
        self._base_url: str | None = None
        contact = CONTACTS_PATH + "/(?P<key>[^/]+)"
        self._routes = [
            self._route("GET", CONTACTS_PATH, CONTACTS_PATH, self._list),
            self._route("POST", CONTACTS_PATH + "/search", None, self._search, search=True),
            self._route("POST", CONTACTS_PATH + "/batch/read", None, self._batch_read),
            self._route("POST", CONTACTS_PATH + "/batch/update", None, self._batch_update),
            self._route("GET", contact, CONTACTS_PATH + "/{id}", self._get_one),
            self._route("PATCH", contact, CONTACTS_PATH + "/{id}", self._patch),
            self._route("GET", "/crm/v3/properties/contacts", None, self._properties),
            self._route(
                "GET",
                "/crm/v3/properties/contacts/(?P<key>[^/]+)",
                "/crm/v3/properties/contacts/{name}",
                self._property,
            ),
        ]

    @staticmethod
    def _route(
        method: str, pattern: str, label: str | None, handler: RouteHandler, *, search: bool = False
    ) -> _Route:
        label = f"{method} {label or pattern}"
        return _Route(method, re.compile(f"^{pattern}$"), label, handler, search)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving and return the base URL (``http://127.0.0.1:PORT``)."""
        self._base_url = self._server.start()
        return self._base_url

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._server.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _now_ms(self) -> int:
        return self.portal.clock_ms()  # looked up per call: a test may swap the portal

    def reset(self) -> None:
        """Forget injected faults, counted calls and spent rate-limit budget; keep the portal."""
        self.faults.clear()
        self.calls.reset()
        self._limiter.reset()

    # --- fault injection ----------------------------------------------------------------------
    def inject_status(
        self,
        status: int,
        *,
        method: str = "*",
        path_pattern: str = ".*",
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and its documented body.

        429 gets the ``TEN_SECONDLY_ROLLING`` body (use :meth:`inject_rate_limit` for the others).
        """
        if status == 429:
            body = rate_limit_body("TEN_SECONDLY_ROLLING")
        else:
            message, category = _STATUS_BODIES.get(status, (f"HTTP {status}", "ERROR"))
            body = error_body(message, category)
        self.faults.add(
            Fault(method, path_pattern, Response(status, body, dict(headers or {})), times)
        )

    def inject_rate_limit(
        self,
        policy: str = "TEN_SECONDLY_ROLLING",
        *,
        times: int = 1,
        retry_after_s: float | None = None,
        path_pattern: str = ".*",
        method: str = "*",
    ) -> None:
        """Answer the next ``times`` matching requests with the 429 of ``policy``.

        ``Retry-After`` is sent only when ``retry_after_s`` is given (HubSpot documents it for 477).
        """
        headers = {} if retry_after_s is None else {"Retry-After": f"{retry_after_s:g}"}
        self.faults.add(
            Fault(method, path_pattern, Response(429, rate_limit_body(policy), headers), times)
        )

    # --- dispatch -----------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        route, match = None, None
        for candidate in self._routes:
            if candidate.method == request.method and (match := candidate.pattern.match(path)):
                route = candidate
                break
        self.calls.record(route.label if route else f"{request.method} {path}")
        is_search = route is not None and route.search

        injected = self.faults.take(request)
        if injected is not None:
            return self._finish(injected, {} if is_search else self._limiter.headers())
        if not self._authorized(request):
            message = (
                "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            )
            return self._finish(Response(401, error_body(message, "INVALID_AUTHENTICATION")), {})
        if route is None or match is None:
            body = error_body(f"Unknown route {request.method} {path}", "OBJECT_NOT_FOUND")
            return self._finish(Response(404, body), {})

        rate_headers: dict[str, str] = {}
        if is_search:
            if not self._limiter.take_search():
                return self._finish(Response(429, rate_limit_body("SECONDLY")), {})
        else:
            policy, rate_headers = self._limiter.take_general()
            if policy is not None:
                return self._finish(Response(429, rate_limit_body(policy)), rate_headers)
        try:
            response = route.handler(request, match)
        except _ApiError as error:
            response = error.response
        return self._finish(response, rate_headers)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.access_token

    @staticmethod
    def _finish(response: Response, headers: Mapping[str, str]) -> Response:
        merged = {"X-HubSpot-Correlation-Id": _correlation_id(), **headers, **response.headers}
        return Response(response.status, response.body, merged, response.content_type)

    # --- helpers ------------------------------------------------------------------------------
    def _names(self, requested: Sequence[str] | None) -> list[str]:
        """Properties to render: the defaults, or the known requested ones plus the system three."""
        if not requested:
            return list(DEFAULT_PROPERTIES)
        schema = self.portal.schema
        return sorted({*(name for name in requested if name in schema), *SYSTEM_PROPERTIES})

    def _child_rng(self) -> random.Random | None:
        if not self.shuffle_ties:
            return None
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _bad_request(f"Invalid input JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _bad_request("Invalid input JSON: expected an object.")
        return body

    def _validate_write(
        self, properties: Any, problems: list[dict[str, Any]]
    ) -> dict[str, PropertyValue]:
        """Check values against the schema (appending to ``problems``); ``""`` becomes a clear."""
        if not isinstance(properties, dict):
            raise _bad_request("properties must be an object of property names to values.")
        schema = self.portal.schema
        cleaned: dict[str, PropertyValue] = {}
        for name, value in properties.items():
            prop = schema.get(name)
            if prop is None:
                problems.append(
                    _invalid_value(
                        name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                )
                continue
            if prop.read_only:
                problems.append(
                    _invalid_value(
                        name,
                        "READ_ONLY_VALUE",
                        f"{name} is a read only property; its value cannot be set.",
                    )
                )
                continue
            if isinstance(value, dict | list):
                problems.append(
                    _invalid_value(
                        name, "INVALID_PROPERTY_VALUE", f"{value!r} is not a valid value for {name}"
                    )
                )
                continue
            text = (
                None
                if value in (None, "")
                else ("true" if value is True else "false" if value is False else str(value))
            )
            options = [option for option, _ in prop.options]
            if text is not None and prop.type == "enumeration" and text not in options:
                message = f"{text} was not one of the allowed options: [{', '.join(options)}]"
                problems.append(_invalid_value(name, "INVALID_OPTION", message))
            cleaned[name] = text
        return cleaned

    def _apply(self, row: SearchRow, changes: dict[str, PropertyValue]) -> dict[str, Any]:
        """Write validated changes (lifecycle stage only forward) and render the written names."""
        written = dict(changes)
        stage, current = written.get("lifecyclestage"), row.properties.get("lifecyclestage")
        order = [value for value, _ in self.portal.schema["lifecyclestage"].options]
        if stage in order and current in order and order.index(stage) < order.index(current):
            del written["lifecyclestage"]  # the API moves lifecyclestage forward only
        self.portal.update_contact(row.id, written)
        fresh = self.portal.lookup(row.id)
        assert fresh is not None  # contacts are never deleted
        return render_contact(fresh[0], None, sorted({*changes, *SYSTEM_PROPERTIES}))

    def _batch_response(self, results: list[dict[str, Any]], missing: list[str]) -> Response:
        stamp = iso_ms(self.portal.clock_ms())
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if not missing:
            return Response(200, body)
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return Response(207, body)

    @staticmethod
    def _check_batch_size(inputs: Any, limit: int) -> list[Any]:
        if not isinstance(inputs, list):
            raise _bad_request("inputs must be a list.")
        if len(inputs) > limit:
            raise _bad_request(
                f"The maximum number of inputs supported in a batch is {limit}. "
                f"Received {len(inputs)} inputs."
            )
        if not all(isinstance(item, dict) and item.get("id") is not None for item in inputs):
            raise _bad_request("Every input needs an id.")
        return inputs

    @staticmethod
    def _id_property(value: Any) -> str | None:
        if value in (None, "", "hs_object_id"):
            return None
        if value != "email":
            raise _bad_request(f"Unable to find unique property {value}")
        return "email"

    # --- routes -------------------------------------------------------------------------------
    def _list(self, request: Request, _match: re.Match[str]) -> Response:
        limit = _query_int(request.query, "limit", LIST_LIMIT_DEFAULT)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise _bad_request(f"limit must be between 1 and {LIST_LIMIT_MAX}, got {limit}.")
        after = _query_int(request.query, "after", 0)
        archived = _query_flag(request.query, "archived")
        names = self._names(_query_names(request.query, "properties"))
        page, next_id = self.portal.page(after, limit, archived=archived)
        body: dict[str, Any] = {"results": [render_contact(row, at, names) for row, at in page]}
        if next_id is not None:
            link = f"{self.base_url}{CONTACTS_PATH}?after={next_id}&limit={limit}"
            body["paging"] = {"next": {"after": str(next_id), "link": link}}
        return Response(200, body)

    def _get_one(self, request: Request, match: re.Match[str]) -> Response:
        key = match["key"]
        id_property = self._id_property(request.query.get("idProperty", [None])[-1])
        found = self.portal.lookup(
            key, archived=_query_flag(request.query, "archived"), id_property=id_property
        )
        if found is None:
            raise _not_found(key)
        return Response(
            200, render_contact(*found, self._names(_query_names(request.query, "properties")))
        )

    def _search(self, request: Request, _match: re.Match[str]) -> Response:
        try:
            query = parse_search_request(request.body.decode("utf-8"), self.portal.property_types())
        except (SearchRequestError, UnicodeDecodeError) as exc:
            raise _bad_request(str(exc)) from exc
        visible_at = (
            self.portal.clock_ms() - self.search_index_lag_ms
            if self.search_index_lag_ms > 0
            else None
        )
        rows = self.portal.search_rows(visible_at_ms=visible_at)
        total, page, next_after = query.run(rows, self._child_rng())
        names = self._names(query.properties)
        body: dict[str, Any] = {
            "total": total,
            "results": [render_contact(row, None, names) for row in page],
        }
        if next_after is not None:
            body["paging"] = {"next": {"after": next_after}}
        return Response(200, body)

    def _batch_read(self, request: Request, _match: re.Match[str]) -> Response:
        body = self._json_body(request)
        limit = (
            BATCH_INPUT_MAX_WITH_HISTORY if body.get("propertiesWithHistory") else BATCH_INPUT_MAX
        )
        inputs = self._check_batch_size(body.get("inputs"), limit)
        id_property = self._id_property(body.get("idProperty"))
        archived = _query_flag(request.query, "archived")
        requested = body.get("properties")
        names = self._names(requested if isinstance(requested, list) else None)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for key in dict.fromkeys(str(item["id"]) for item in inputs):  # duplicates read once
            found = self.portal.lookup(key, archived=archived, id_property=id_property)
            if found is None:
                missing.append(key)
            else:
                results.append(render_contact(*found, names))
        rng = self._child_rng()
        if rng is not None:
            rng.shuffle(results)  # result order is unverified: clients must map by id
        return self._batch_response(results, missing)

    def _batch_update(self, request: Request, _match: re.Match[str]) -> Response:
        inputs = self._check_batch_size(self._json_body(request).get("inputs"), BATCH_INPUT_MAX)
        keys = [str(item["id"]) for item in inputs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise _bad_request(
                f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be unique"
            )
        problems: list[dict[str, Any]] = []
        changes = [self._validate_write(item.get("properties"), problems) for item in inputs]
        if problems:
            raise _bad_request(f"Property values were not valid: {json.dumps(problems)}")
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item, key, change in zip(inputs, keys, changes, strict=True):
            id_property = self._id_property(item.get("idProperty"))
            if id_property is None and not key.isdigit():
                continue  # an e-mail as id without idProperty is a silent no-op (reported)
            found = self.portal.lookup(key, id_property=id_property)
            if found is None:
                missing.append(key)
            else:
                results.append(self._apply(found[0], change))
        return self._batch_response(results, missing)

    def _patch(self, request: Request, match: re.Match[str]) -> Response:
        key = match["key"]
        id_property = self._id_property(request.query.get("idProperty", [None])[-1])
        problems: list[dict[str, Any]] = []
        change = self._validate_write(self._json_body(request).get("properties"), problems)
        if problems:
            raise _bad_request(f"Property values were not valid: {json.dumps(problems)}")
        found = self.portal.lookup(key, id_property=id_property)
        if found is None:
            raise _not_found(key)
        return Response(200, self._apply(found[0], change))

    def _properties(self, request: Request, _match: re.Match[str]) -> Response:
        if _query_flag(request.query, "archived"):
            return Response(200, {"results": []})
        props = self.portal.schema.values()
        return Response(200, {"results": [prop.to_api(index) for index, prop in enumerate(props)]})

    def _property(self, _request: Request, match: re.Match[str]) -> Response:
        schema = self.portal.schema
        name = match["key"]
        if name not in schema:
            body = error_body(
                f"Unable to find property {name} for object type contacts", "OBJECT_NOT_FOUND"
            )
            raise _ApiError(Response(404, body))
        return Response(200, schema[name].to_api(list(schema).index(name)))


__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "HubSpotLimits",
    "HubSpotPortal",
    "HubSpotSimulator",
    "PropertyDef",
    "error_body",
    "iso_ms",
    "rate_limit_body",
    "render_contact",
]
