"""Readiness of the running daemon, per pipeline, for ``/readyz``.

A pipeline is ready when every one of its checks passes:

- ``store``: the state store answers a trivial query now;
- ``lease``: this replica holds the pipeline's lease, or stands by for it. Until leases exist
  there is one runner and the check says ``no lease: single runner``; the lease code replaces
  ``PipelineHealth.lease`` with its own callable;
- ``last_pass``: the last pass did its job, or no pass has ended yet and the first is still
  within its interval (``poll_interval_s`` from start);
- ``hubspot`` / ``salesforce``: the system has not been failing every call for
  ``OUTAGE_AFTER_S`` or more (a pass keeps retrying an outage for the whole retry budget, so
  this turns not-ready before the pass gives up).

- ``start`` (only while starting): what the pipeline waits for before its first pass.

The process is ready when every pipeline is. Checks are cheap,
never raise and never call HubSpot or Salesforce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from crmbridge.errors import CrmBridgeError
from crmbridge.observe import PassRecord
from crmbridge.web.app import Readiness

#: A system failing every call for this long is reported not ready.
OUTAGE_AFTER_S = 30.0
SYSTEMS = ("hubspot", "salesforce")


@dataclass(frozen=True)
class LeaseState:
    """Whether this replica may run the pipeline: holding its lease, or standing by."""

    ok: bool
    detail: str


def single_runner() -> LeaseState:
    """The lease check while there are no leases: one runner, always fine."""
    return LeaseState(ok=True, detail="no lease: single runner")


class PipelineHealth:
    """The readiness checks of one pipeline; a ``PassObserver`` and a ``CallObserver``."""

    def __init__(
        self,
        name: str,
        *,
        poll_interval_s: float,
        store_ping: Callable[[], None],
        lease: Callable[[], LeaseState] = single_runner,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.poll_interval_s = poll_interval_s
        self.store_ping = store_ping
        #: Set by the lease code: holding the lease or standing by is ready.
        self.lease = lease
        self._monotonic = monotonic
        self._started = monotonic()
        self._lock = threading.Lock()
        self._last: PassRecord | None = None
        self._failing_since: dict[str, float] = {}
        self._last_error: dict[str, str] = {}
        self._starting: str | None = "starting"

    def starting(self, detail: str | None) -> None:
        """Say the pipeline is still starting (and why), or, with None, that it has started."""
        with self._lock:
            self._starting = detail

    # -- observers --------------------------------------------------------------------------
    def pass_started(self, pipeline: str) -> None:
        del pipeline

    def pass_finished(self, record: PassRecord) -> None:
        with self._lock:
            self._last = record

    def call_failed(self, system: str, error: BaseException) -> None:
        with self._lock:
            self._failing_since.setdefault(system, self._monotonic())
            self._last_error[system] = str(error)

    def call_succeeded(self, system: str) -> None:
        with self._lock:
            self._failing_since.pop(system, None)

    def retried(self, system: str) -> None:
        del system

    # -- the checks -------------------------------------------------------------------------
    def checks(self) -> dict[str, tuple[bool, str]]:
        """Each check's (passed, what it saw)."""
        results = {"store": self._store(), "lease": self._lease(), "last_pass": self._pass()}
        now = self._monotonic()
        with self._lock:
            failing = dict(self._failing_since)
            errors = dict(self._last_error)
            starting = self._starting
        if starting is not None:
            results["start"] = (False, starting)
        for system in SYSTEMS:
            since = failing.get(system)
            if since is None or now - since < OUTAGE_AFTER_S:
                results[system] = (True, "answering")
            else:
                results[system] = (
                    False,
                    f"every call failing for {now - since:.0f} s: {errors.get(system, '')}",
                )
        return results

    def _store(self) -> tuple[bool, str]:
        try:
            self.store_ping()
        except CrmBridgeError as exc:
            return False, f"unreachable: {exc}"
        except Exception as exc:  # a readiness probe reports, it never raises
            return False, f"unreachable: {type(exc).__name__}: {exc}"
        return True, "reachable"

    def _lease(self) -> tuple[bool, str]:
        try:
            state = self.lease()
        except Exception as exc:
            return False, f"unknown: {type(exc).__name__}: {exc}"
        return state.ok, state.detail

    def _pass(self) -> tuple[bool, str]:
        with self._lock:
            last = self._last
        if last is None:
            waited = self._monotonic() - self._started
            if waited <= self.poll_interval_s:
                return True, f"first pass running ({waited:.0f} s)"
            return False, f"no pass ended in the {waited:.0f} s since start"
        shown = f"{last.result} at {last.finished_at}"
        if last.error:
            shown += f": {last.error}"
        return last.succeeded, shown


class ServiceHealth:
    """The ``HealthSource`` of the process: every pipeline's checks, keyed ``pipeline.check``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipelines: dict[str, PipelineHealth] = {}

    def add(self, pipeline: PipelineHealth) -> PipelineHealth:
        with self._lock:
            self._pipelines[pipeline.name] = pipeline
        return pipeline

    def pipeline(self, name: str) -> PipelineHealth | None:
        with self._lock:
            return self._pipelines.get(name)

    def readiness(self) -> Readiness:
        with self._lock:
            pipelines = list(self._pipelines.values())
        checks: dict[str, str] = {}
        ready = bool(pipelines)  # not ready before any pipeline is known
        for health in pipelines:
            for check, (ok, detail) in health.checks().items():
                checks[f"{health.name}.{check}"] = detail if ok else f"FAILING: {detail}"
                ready = ready and ok
        return Readiness(ready, checks)
