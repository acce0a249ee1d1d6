"""Readiness checks per pipeline: store, lease, last pass, systems failing for a while."""

from __future__ import annotations

from crmbridge.errors import RetryableApiError, StateStoreUnavailableError
from crmbridge.health import OUTAGE_AFTER_S, LeaseState, PipelineHealth, ServiceHealth
from crmbridge.observe import PassRecord


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(result: str) -> PassRecord:
    return PassRecord(
        "default", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z", 1.0, result
    )


def _service(clock: Clock, *, ping: object = None) -> tuple[ServiceHealth, PipelineHealth]:
    def store_ping() -> None:
        if isinstance(ping, Exception):
            raise ping

    health = ServiceHealth()
    pipeline = health.add(
        PipelineHealth("default", poll_interval_s=60, store_ping=store_ping, monotonic=clock)
    )
    pipeline.starting(None)
    return health, pipeline


def test_ready_within_the_first_interval_then_only_after_a_good_pass() -> None:
    """Before any pass ends the process is ready for one poll interval; then it needs a pass
    that did its job, and a failed one makes it not ready."""
    clock = Clock()
    health, pipeline = _service(clock)
    assert health.readiness().ready
    clock.now += 61
    assert not health.readiness().ready
    pipeline.pass_finished(_record("ok"))
    assert health.readiness().ready
    pipeline.pass_finished(_record("stopped_early"))
    readiness = health.readiness()
    assert not readiness.ready
    assert readiness.checks["default.last_pass"].startswith("FAILING: stopped_early")


def test_an_unreachable_store_or_a_lost_lease_is_not_ready() -> None:
    """The store check and the lease hook each decide readiness on their own."""
    clock = Clock()
    health, pipeline = _service(clock, ping=StateStoreUnavailableError("db", "gone"))
    assert not health.readiness().ready
    assert "unreachable" in health.readiness().checks["default.store"]
    health, pipeline = _service(clock)
    assert health.readiness().checks["default.lease"] == "no lease: single runner"
    pipeline.lease = lambda: LeaseState(ok=False, detail="lease lost")
    assert not health.readiness().ready


def test_a_system_failing_every_call_for_a_while_is_not_ready_until_it_answers() -> None:
    """Failed calls turn a system not ready only after OUTAGE_AFTER_S; one answer clears it."""
    clock = Clock()
    health, pipeline = _service(clock)
    pipeline.call_failed("salesforce", RetryableApiError("salesforce", "connection refused"))
    assert health.readiness().ready
    clock.now += OUTAGE_AFTER_S
    assert not health.readiness().ready
    assert "connection refused" in health.readiness().checks["default.salesforce"]
    pipeline.call_succeeded("salesforce")
    assert health.readiness().ready


def test_not_ready_while_starting() -> None:
    """A pipeline still starting (waiting for a system) is not ready, saying why; a process
    with no pipeline yet is not ready either."""
    assert not ServiceHealth().readiness().ready
    health, pipeline = _service(Clock())
    pipeline.starting("cannot start yet: salesforce unreachable")
    readiness = health.readiness()
    assert not readiness.ready
    assert readiness.checks["default.start"] == "FAILING: cannot start yet: salesforce unreachable"
