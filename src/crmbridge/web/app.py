"""The Flask application factory shared by the daemon's endpoints and the reviewer console."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flask import Blueprint, Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass(frozen=True)
class Readiness:
    """Whether the process should receive work, with one line per check (name → what it saw)."""

    ready: bool
    checks: Mapping[str, str] = field(default_factory=dict)


class HealthSource(Protocol):
    """What the health endpoints ask the running process."""

    def readiness(self) -> Readiness:
        """The process's readiness now; cheap, never raises, never calls an outside API."""
        ...


#: Headers on every answer: nothing here is meant to be framed, sniffed or cached by a proxy.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(
    *,
    health: HealthSource | None = None,
    registry: CollectorRegistry | None = None,
    blueprints: Sequence[Blueprint] = (),
    secret_key: str | None = None,
    config: Mapping[str, object] | None = None,
) -> Flask:
    """The application: /healthz and /readyz when ``health`` is given, /metrics when
    ``registry`` is given, then each blueprint. ``secret_key`` signs session cookies (a random
    one per process when None: sessions then end with the process)."""
    app = Flask("crmbridge", static_folder=None)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if config:
        app.config.update(config)

    if health is not None:
        _add_health(app, health)
    if registry is not None:
        _add_metrics(app, registry)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def _add_health(app: Flask, health: HealthSource) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        # Alive: the process answers. Readiness is /readyz's business.
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        readiness = health.readiness()
        body = jsonify(
            status="ready" if readiness.ready else "not ready", checks=dict(readiness.checks)
        )
        return body, 200 if readiness.ready else 503


def _add_metrics(app: Flask, registry: CollectorRegistry) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
