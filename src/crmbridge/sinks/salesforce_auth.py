"""Salesforce OAuth 2.0 JWT bearer login (api-contracts.md 4.9): a token provider for the sink.

Why not simple-salesforce's own JWT mode: it builds the token URL as
``https://{domain}.salesforce.com``, so it can reach neither a My Domain login URL given as a
URL nor a simulator on loopback. This module posts the same request with ``requests`` to the
configured ``login_url``; the sink still talks to Salesforce only through simple-salesforce.

Contract: calling the provider returns a fresh access token (and records ``instance_url`` from
the answer). ``invalid_grant`` and the other 400 answers are configuration (the user is not
pre-authorised, the audience or key is wrong): ``AuthenticationError`` with Salesforce's own
description. Connection losses and 5xx are retried by the policy given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

from crmbridge.errors import (
    AuthenticationError,
    ConfigError,
    ConfigProblem,
    FatalApiError,
    Location,
    RetryableApiError,
)
from crmbridge.retry import RetryPolicy
from crmbridge.settings import SalesforceSettings

SYSTEM = "salesforce"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Salesforce wants a short-lived assertion: "minutes ahead".
ASSERTION_TTL_S = 180


def read_private_key(settings: SalesforceSettings) -> bytes:
    """The connected app's private key, or a ConfigError naming the variable."""
    path = settings.private_key_file
    problem = None
    if path is None:
        problem = "not set"
    elif not path.is_file():
        problem = f"no file at {path}"
    if problem is None and path is not None:
        data = path.read_bytes()
        if b"PRIVATE KEY" in data:
            return data
        problem = f"{path} holds no PEM private key"
    raise ConfigError(
        ConfigProblem(
            Location("environment variable CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE"),
            str(problem),
            hint="the PEM private key whose certificate is uploaded to the connected app",
        )
    )


class JwtBearerLogin:
    """A ``TokenProvider``: each call logs in with a signed assertion and returns the token."""

    def __init__(
        self,
        settings: SalesforceSettings,
        retry: RetryPolicy,
        *,
        session: requests.Session,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._key = read_private_key(settings)
        self._retry = retry
        self._session = session
        self._clock = clock
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self.instance_url: str | None = None
        self.logins = 0

    def close(self) -> None:
        self._session.close()

    def assertion(self) -> str:
        settings = self._settings
        claims = {
            "iss": settings.consumer_key,
            "sub": settings.username,
            "aud": settings.login_url,
            "exp": int(self._clock()) + ASSERTION_TTL_S,
        }
        return jwt.encode(claims, self._key, algorithm="RS256")

    def __call__(self) -> str:
        body = self._retry.call(self._post)
        self.logins += 1
        self.instance_url = str(body.get("instance_url") or "") or None
        return str(body["access_token"])

    def _post(self) -> dict[str, Any]:
        url = self._settings.login_url + TOKEN_PATH
        try:
            response = self._session.post(
                url,
                data={"grant_type": JWT_GRANT, "assertion": self.assertion()},
                timeout=self._timeout,
            )
        except requests.exceptions.SSLError as exc:
            # Not a refused credential: a person must set the CA bundle (waiting cannot help).
            raise FatalApiError(
                SYSTEM,
                f"TLS verification failed at {url}: {exc}; set CRMBRIDGE_SALESFORCE__CA_BUNDLE",
                code="TLS",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise RetryableApiError(SYSTEM, f"login failed to connect: {exc}") from None
        if response.status_code >= 500:
            raise RetryableApiError(SYSTEM, "login server error", status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            error = body.get("error") or f"HTTP {response.status_code}"
            description = body.get("error_description") or "no description"
            raise AuthenticationError(
                SYSTEM,
                f"JWT bearer login refused: {description} "
                "(check the consumer key, the user's pre-authorisation and LOGIN_URL)",
                code=str(error),
            )
        return dict(body)
