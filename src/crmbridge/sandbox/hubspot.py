"""A local HubSpot CRM v3 contacts API: an in-memory portal served over loopback HTTP.

It follows ``docs/hubspot-api.md`` closely enough that ``hubspot-api-client`` 12.0.0 talks to
it unchanged (``HubSpot(access_token=..., host=sim.start())``) and that the traps of docs/traps.md
happen here as they do on the real service. Numbers below are the checklist items of
docs/hubspot-api.md#simulator.

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
- ``GET /crm/v3/properties/contacts`` (and ``/{name}``): the standard properties, the custom ones
  of docs/settings.md#reference-portal and the default enumeration options, validated on every
  write. ``hs_analytics_source`` (Original Source) is read-only over the API; the portal (HubSpot
  itself) sets it when seeding.
- ``lifecyclestage`` only moves forward: a backward write is ignored (the real answer is
  undocumented, so a client must read back); ``""`` clears any property.
- Rate limits when :class:`HubSpotLimits` sets them (8): a 10-second rolling burst budget and a
  daily budget (reset at UTC midnight, not the account time zone) for non-search calls, whose
  responses, errors included, carry the ``X-HubSpot-RateLimit-*`` headers of the configured
  budgets; a per-second budget for search, whose responses never carry them. 429 bodies as in
  docs/hubspot-api.md#rate-limits; ``Retry-After`` only when a test injects it. 401s and unknown
  routes carry no headers.
- Injected faults (``sim.faults``, :meth:`HubSpotSimulator.inject_status`, ``inject_hang``: a
  request read and never answered) answer before auth and limits, spend no budget (non-search
  ones still show the headers) and are counted in ``sim.calls`` like every other request.

Not modelled: ``propertiesWithHistory`` and ``associations`` (accepted and ignored); create,
archive and merge endpoints (use :class:`HubSpotPortal` directly); scopes (403); 414 for long URLs;
webhooks; property groups and property creation over HTTP; portals adding lifecycle stages;
multi-select properties. Every value is stored as a string or ``None``.
"""

from __future__ import annotations

import random
import re
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from crmbridge.sandbox._hubspot_errors import (
    STATUS_BODIES,
    ApiError,
    correlation_id,
    error_body,
    rate_limit_body,
)
from crmbridge.sandbox._hubspot_portal import (
    INDUSTRIES,
    LEAD_STATUSES,
    LIFECYCLE_STAGES,
    STANDARD_PROPERTIES,
    HubSpotPortal,
    PropertyDef,
    iso_ms,
    render_contact,
)
from crmbridge.sandbox._hubspot_routes import CONTACTS_PATH, ContactRoutes
from crmbridge.sandbox._server import (
    HANG,
    CallLog,
    Fault,
    FaultPlan,
    Request,
    Response,
    Served,
    SimulatorServer,
)

DEFAULT_ACCESS_TOKEN = "sandbox-hubspot-token"  # noqa: S105 - a public sandbox value, not a secret
BURST_WINDOW_MS = 10_000
SEARCH_WINDOW_MS = 1_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class HubSpotLimits:
    """Rate-limit budgets (docs/hubspot-api.md#rate-limits); ``None`` means unlimited, the default
    for tests and the demo."""

    burst_per_10s: int | None = None
    search_per_s: int | None = None
    daily: int | None = None


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


RouteHandler = Callable[[Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    label: str
    handler: RouteHandler
    search: bool = False


class HubSpotSimulator(ContactRoutes, Served):
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
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` serves HTTPS (e.g. ``make_local_ca(dir).server_context()``), so the
        ``CRMBRIDGE_HUBSPOT__CA_BUNDLE`` path can be exercised; plain HTTP otherwise."""
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
        self._server = SimulatorServer(self._handle, port=port, ssl_context=ssl_context)
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
        """Start serving and return the base URL (``http(s)://127.0.0.1:PORT``)."""
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
            message, category = STATUS_BODIES.get(status, (f"HTTP {status}", "ERROR"))
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

    def inject_hang(self, *, method: str = "*", path_pattern: str = ".*", times: int = 1) -> None:
        """Read the next ``times`` matching requests and never answer them (until ``stop``)."""
        self.faults.add(Fault(method, path_pattern, HANG, times))

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
        except ApiError as error:
            response = error.response
        return self._finish(response, rate_headers)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.access_token

    @staticmethod
    def _finish(response: Response, headers: Mapping[str, str]) -> Response:
        merged = {"X-HubSpot-Correlation-Id": correlation_id(), **headers, **response.headers}
        return replace(response, headers=merged)


__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "INDUSTRIES",
    "LEAD_STATUSES",
    "LIFECYCLE_STAGES",
    "STANDARD_PROPERTIES",
    "HubSpotLimits",
    "HubSpotPortal",
    "HubSpotSimulator",
    "PropertyDef",
    "error_body",
    "iso_ms",
    "rate_limit_body",
    "render_contact",
]
