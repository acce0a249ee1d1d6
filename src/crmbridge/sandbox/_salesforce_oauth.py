"""The Salesforce simulator's OAuth 2.0 JWT bearer token endpoint
(docs/salesforce-api.md#jwt-bearer-login).

``POST /services/oauth2/token`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
and an RS256 ``assertion``: the signature is checked against the connected app's certificate
(public key), ``iss`` must be its consumer key, ``sub`` a pre-authorised user, ``aud`` the
login URL (the simulator's own URL, ``https://login.salesforce.com`` or
``https://test.salesforce.com``), ``exp`` in the future. Success is 200
``{"access_token", "scope", "instance_url", "id", "token_type": "Bearer"}``, no refresh token;
failures are 400 ``{"error": "invalid_grant" | …, "error_description": …}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import jwt

from crmbridge.sandbox._server import Request, Response

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
KNOWN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class ConnectedApp:
    consumer_key: str
    public_key_pem: bytes
    authorised_users: set[str] = field(default_factory=set)


def _error(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})


@dataclass
class TokenEndpoint:
    """Issues access tokens for registered connected apps; ``issue`` mints a token."""

    issue: Callable[[], str]
    instance_url: Callable[[], str]
    clock_s: Callable[[], float] = time.time
    apps: dict[str, ConnectedApp] = field(default_factory=dict)
    logins: int = 0

    def register(self, consumer_key: str, public_key_pem: bytes, *users: str) -> None:
        self.apps[consumer_key] = ConnectedApp(consumer_key, public_key_pem, set(users))

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, {"error": "invalid_request", "error_description": "POST only"})
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        grant = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        if grant != JWT_GRANT:
            return _error("unsupported_grant_type", "grant type not supported")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _error("invalid_grant", "invalid assertion")
        app = self.apps.get(str(claims.get("iss")))
        if app is None:
            return _error("invalid_client_id", "client identifier invalid")
        audiences = (self.instance_url(), *KNOWN_AUDIENCES)
        try:
            jwt.decode(
                assertion,
                app.public_key_pem,
                algorithms=["RS256"],
                audience=list(audiences),
                options={"require": ["exp", "iss", "sub", "aud"], "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            return _error("invalid_grant", "audience is invalid")
        except jwt.PyJWTError:
            return _error("invalid_grant", "invalid assertion")
        if float(claims["exp"]) < self.clock_s():
            return _error("invalid_grant", "expired authorization code")
        if claims.get("sub") not in app.authorised_users:
            return _error("invalid_grant", "user hasn't approved this consumer")
        self.logins += 1
        base = self.instance_url()
        return Response(
            200,
            {
                "access_token": self.issue(),
                "scope": "api",
                "instance_url": base,
                "id": f"{base}/id/00DSIM000000001/005SIM000000001",
                "token_type": "Bearer",
            },
        )
