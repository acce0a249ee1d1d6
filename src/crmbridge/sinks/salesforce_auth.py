"""Salesforce OAuth 2.0 JWT bearer login (docs/salesforce-api.md#jwt-bearer-login): a token
provider for the sink.

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
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crmbridge.errors import (
    AuthenticationError,
    ConfigError,
    ConfigProblem,
    FatalApiError,
    Location,
    RetryableApiError,
)
from crmbridge.redaction import redact, register_secret
from crmbridge.retry import RetryPolicy
from crmbridge.settings import SalesforceSettings
from crmbridge.text import has_unsafe_characters

SYSTEM = "salesforce"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Salesforce wants a short-lived assertion: "minutes ahead".
ASSERTION_TTL_S = 180


def read_private_key(settings: SalesforceSettings) -> bytes:
    """The connected app's private key (PEM, unencrypted RSA), checked before any call: a key
    that cannot sign the assertion is a ConfigError naming the variable, never a ``jwt``
    traceback at the first login. No message quotes the file's content."""
    path = settings.private_key_file
    if path is None:
        raise _key_problem("not set")
    if path.is_dir():
        raise _key_problem(f"{path} is a directory, not a key file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _key_problem(f"no file at {path}") from None
    except OSError as exc:
        raise _key_problem(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _key_problem(
            f"{path} is encrypted with a pass phrase",
            "crmbridge needs the key unencrypted (openssl pkey -in app.key -out plain.key), "
            "readable by its own user only",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise _key_problem(f"{path} holds no readable PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _key_problem(
            f"{path} holds a {type(key).__name__.removeprefix('_')} key, not an RSA key",
            "the JWT bearer login signs with RS256: use the RSA key whose certificate is "
            "uploaded to the connected app",
        )
    return data


def _key_problem(message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(
        ConfigProblem(
            Location("environment variable CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE"),
            message,
            hint=hint or "the PEM private key whose certificate is uploaded to the connected app",
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
        instance = urlsplit(str(body.get("instance_url") or ""))
        usable = instance.scheme == "https" and bool(instance.hostname)
        self.instance_url = f"https://{instance.netloc}" if usable else None
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
                f"TLS verification failed at {url}: {redact(str(exc))}; "
                "set CRMBRIDGE_SALESFORCE__CA_BUNDLE",
                code="TLS",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise RetryableApiError(
                SYSTEM, f"login failed to connect: {redact(str(exc))}"
            ) from None
        if response.status_code >= 500:
            raise RetryableApiError(SYSTEM, "login server error", status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
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
        token = body["access_token"]
        if not isinstance(token, str) or not token.isascii() or has_unsafe_characters(token):
            # It would go out in an Authorization header (and into an error message with it).
            raise RetryableApiError(
                SYSTEM,
                "the login answered with an access token that cannot be sent in a "
                "request header (its value is not shown)",
            )
        register_secret(token)
        return dict(body)
