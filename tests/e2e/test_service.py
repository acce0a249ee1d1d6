"""`crmbridge run` as a service: health, readiness and metrics over HTTP, and outages it
outlives (the CLI as a subprocess against the simulators)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from crmbridge.sandbox.runtime import Sandbox

from ._cli import TIMEOUT_S, crmbridge, running, sandbox_env

SERVICE_SETTINGS = {
    "CRMBRIDGE_POLL_INTERVAL_S": "1",
    "CRMBRIDGE_HUBSPOT__INDEX_LAG_S": "0",
    "CRMBRIDGE_RETRY__MAX_TOTAL_S": "2",
    "CRMBRIDGE_RETRY__MAX_WAIT_S": "0.5",
    "CRMBRIDGE_SALESFORCE__CONNECT_TIMEOUT_S": "1",
    "CRMBRIDGE_HUBSPOT__CONNECT_TIMEOUT_S": "1",
}


class Daemon:
    """A running `crmbridge run`: its JSON log lines, read as they come, and its URL."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self.wait_for_event("http_serving")["url"]

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line)

    def events(self, name: str) -> list[dict[str, object]]:
        with self._lock:
            lines = list(self.lines)
        found = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                found.append(event)
        return found

    def wait_for_event(self, name: str, *, count: int = 1) -> dict[str, object]:
        self.wait_until(lambda: len(self.events(name)) >= count, f"{count} x {name}")
        return self.events(name)[count - 1]

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            assert self.process.poll() is None, f"crmbridge run ended:\n{''.join(self.lines)}"
            assert time.monotonic() < deadline, f"no {what}:\n{''.join(self.lines)}"
            time.sleep(0.1)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=5)

    def ready(self) -> bool:
        return self.get("/readyz").status_code == 200

    def not_ready(self) -> bool:
        return self.get("/readyz").status_code == 503

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(contacts=40, seed=5, ca_dir=tmp_path / "ca") as sandbox:
        yield sandbox


@pytest.fixture
def daemon(box: Sandbox, tmp_path: Path) -> Iterator[Daemon]:
    env = sandbox_env(box, tmp_path, **SERVICE_SETTINGS)
    with running("run", env=env, cwd=tmp_path) as process:
        yield Daemon(process)


def _sample(metrics_text: str, line_start: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def test_run_serves_health_readiness_and_metrics_and_ends_on_sigterm(
    daemon: Daemon, box: Sandbox
) -> None:
    """/healthz answers, /readyz turns ready after the first pass with every check named,
    /metrics counts what Salesforce holds, and SIGTERM ends the process with 0."""
    assert daemon.get("/healthz").json() == {"status": "ok"}
    daemon.wait_for_event("pass_finished")
    daemon.wait_until(daemon.ready, "ready")
    checks = daemon.get("/readyz").json()["checks"]
    assert checks["default.store"] == "reachable"
    assert checks["default.lease"] == "no lease: single runner"
    assert checks["default.last_pass"].startswith("ok at ")
    text = daemon.get("/metrics").text
    created = _sample(text, 'crmbridge_leads_total{outcome="created",pipeline="default"}')
    assert created == len(box.salesforce.org.leads) > 0
    assert _sample(text, 'crmbridge_last_pass_success{pipeline="default"}') == 1
    assert daemon.stop() == 0


@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_an_unreachable_system_makes_it_not_ready_until_it_returns(
    daemon: Daemon, box: Sandbox, system: str
) -> None:
    """With HubSpot or Salesforce gone, the daemon keeps running and answers 503; started
    again on the same port, the system is used at once: ready, and the new lead synced."""
    daemon.wait_until(daemon.ready, "ready")
    served = box.hubspot if system == "hubspot" else box.salesforce
    served.stop()
    contact = box.hubspot.portal.add_contact(
        {
            "email": "back@example.com",
            "firstname": "Bea",
            "lastname": "Back",
            "company": "Returns Ltd",
            "jobtitle": "CFO",
            "industry": "MANUFACTURING",
            "budget": "90000",
            "need": "Our supply chain has no visibility",
            "timeline_days": "30",
            "lifecyclestage": "marketingqualifiedlead",
        },
        modified_at_ms=int(time.time() * 1000) - 1000,
    )
    daemon.wait_until(daemon.not_ready, "503 from /readyz")
    assert "FAILING" in daemon.get("/readyz").json()["checks"]["default.last_pass"]
    served.start()
    daemon.wait_until(daemon.ready, "ready again")
    daemon.wait_until(
        lambda: box.salesforce.org.get_by_external_id(contact) is not None, "the new lead synced"
    )
    assert daemon.process.poll() is None
    assert daemon.stop() == 0


def test_sync_once_keeps_its_pass_result_for_status(box: Sandbox, tmp_path: Path) -> None:
    """A `sync --once` pass is kept in the store, and `status --format json` shows it."""
    env = sandbox_env(box, tmp_path, **SERVICE_SETTINGS)
    assert crmbridge("sync", "--once", env=env, cwd=tmp_path).returncode == 0
    result = crmbridge("status", "--format", "json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [pipeline] = json.loads(result.stdout)["pipelines"]
    assert pipeline["name"] == "default"
    assert pipeline["last_pass"]["result"] == "ok"
    assert pipeline["last_pass"]["counts"]["created"] == len(box.salesforce.org.leads)
    assert pipeline["lease_holder"] is None
