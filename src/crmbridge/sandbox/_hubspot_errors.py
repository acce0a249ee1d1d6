"""HubSpot's error bodies for the simulator, and the exception a route handler raises to answer one.

Holds :func:`error_body` (the shape in docs/hubspot-api.md#errors), :func:`rate_limit_body` (the
429 bodies in docs/hubspot-api.md#429-bodies), the
documented bodies of injectable statuses, and :class:`ApiError` with its 400 and 404 helpers.
:mod:`crmbridge.sandbox.hubspot` re-exports the two body builders.
"""

from __future__ import annotations

import uuid
from typing import Any

from crmbridge.sandbox._server import Response

RATE_LIMIT_POLICIES = ("TEN_SECONDLY_ROLLING", "DAILY", "SECONDLY")


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error shape (docs/hubspot-api.md#errors)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
        **extra,
    }


def rate_limit_body(policy: str) -> dict[str, Any]:
    """The 429 body of ``policy`` (docs/hubspot-api.md#429-bodies): ``TEN_SECONDLY_ROLLING``,
    ``DAILY`` or ``SECONDLY``."""
    if policy not in RATE_LIMIT_POLICIES:
        raise ValueError(f"unknown rate-limit policy {policy!r}; use one of {RATE_LIMIT_POLICIES}")
    body: dict[str, Any] = {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
    }
    if policy == "TEN_SECONDLY_ROLLING":
        body["groupName"] = "publicapi:private-app:sandbox"
    return body


STATUS_BODIES: dict[int, tuple[str, str]] = {
    423: ("The resource is locked. Retry the request later.", "LOCKED"),
    500: ("internal error", "INTERNAL_ERROR"),
    502: ("Bad Gateway", "BAD_GATEWAY"),
    503: ("Service Unavailable: please try again later.", "SERVICE_UNAVAILABLE"),
}


class ApiError(Exception):
    """Raised inside a route handler to answer with ``response`` instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(Response(400, error_body(message, "VALIDATION_ERROR", **extra)))


def not_found(key: str) -> ApiError:
    body = error_body(
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        context={"id": [key]},
    )
    return ApiError(Response(404, body))
