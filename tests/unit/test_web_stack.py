"""The shared web stack: the app factory's endpoints and a real waitress server on a thread."""

from __future__ import annotations

import requests
from flask import Blueprint
from prometheus_client import CollectorRegistry, Counter

from crmbridge.web.app import Readiness, create_app
from crmbridge.web.server import WebServer


class _Health:
    def __init__(self, ready: bool) -> None:
        self.ready = ready

    def readiness(self) -> Readiness:
        return Readiness(self.ready, {"store": "reachable" if self.ready else "unreachable"})


def test_readyz_answers_503_with_the_failed_check_when_not_ready() -> None:
    """/readyz reports each check and a 503 while the process is not ready."""
    client = create_app(health=_Health(ready=False)).test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "not ready", "checks": {"store": "unreachable"}}
    assert client.get("/healthz").status_code == 200


def test_metrics_render_the_given_registry_in_prometheus_text() -> None:
    """/metrics exposes exactly the registry handed to the factory."""
    registry = CollectorRegistry()
    Counter("crmbridge_test_things", "Things.", registry=registry).inc(3)
    answer = create_app(registry=registry).test_client().get("/metrics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    assert "crmbridge_test_things_total 3.0" in answer.get_data(as_text=True)


def test_endpoints_absent_unless_asked_for_and_headers_on_every_answer() -> None:
    """Without health or registry there is no /readyz or /metrics; every answer is hardened."""
    blueprint = Blueprint("extra", __name__)
    blueprint.add_url_rule("/hello", "hello", lambda: "hi")
    client = create_app(blueprints=[blueprint]).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/readyz").status_code == 404
    answer = client.get("/hello")
    assert answer.get_data(as_text=True) == "hi"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_server_serves_on_a_free_loopback_port_and_stops() -> None:
    """WebServer binds 127.0.0.1 on a free port, answers, and frees the port on stop."""
    server = WebServer(create_app(health=_Health(ready=True))).start()
    try:
        assert server.port > 0
        assert requests.get(f"{server.url}/readyz", timeout=5).json()["status"] == "ready"
    finally:
        server.stop()
    try:
        requests.get(f"{server.url}/healthz", timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")
