"""Pass results, liveness and pipelines in the state store, on both backends."""

from __future__ import annotations

import pytest

from crmbridge.observe import Headroom, PassRecord
from crmbridge.ports import StateStore
from crmbridge.state import open_store, service_queries


def _record(n: int, *, pipeline: str = "default", result: str = "ok") -> PassRecord:
    return PassRecord(
        pipeline=pipeline,
        started_at=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z",
        finished_at=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.500Z",
        duration_s=0.5 + n,
        result=result,
        error=None if result == "ok" else "RetryableApiError: salesforce: down \ud83d",
        counts={"pulled": n, "created": 1, "rejected": 2},
        rejected_by_reason={"budget": 2, "salesforce.DUPLICATES_DETECTED": 1},
        hubspot_calls=3,
        salesforce_calls=4,
        cursor_ms=1_790_000_000_000 + n,
        headroom=(Headroom("salesforce", "daily", 99_000 - n, 100_000),),
    )


def test_a_recorded_pass_reads_back_exactly(store: StateStore) -> None:
    """Every field of a pass result, odd text included, comes back as it was recorded."""
    record = _record(7, result="stopped_early")
    store.record_pass(record)
    assert store.recent_passes(5) == [record]


def test_recent_passes_are_newest_first_and_limited(store: StateStore) -> None:
    """The newest passes come first, as many as asked for."""
    for n in range(5):
        store.record_pass(_record(n))
    assert [p.counts["pulled"] for p in store.recent_passes(3)] == [4, 3, 2]
    assert store.recent_passes(0) == []


def test_only_the_newest_passes_are_kept(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the number kept, the oldest results of the pipeline are deleted."""
    monkeypatch.setattr(service_queries, "PASS_RESULTS_KEPT", 3)
    for n in range(6):
        store.record_pass(_record(n))
    assert [p.counts["pulled"] for p in store.recent_passes(10)] == [5, 4, 3]


def test_pass_results_are_kept_per_pipeline(store: StateStore, store_url: str) -> None:
    """A pipeline sees its own passes only, and the store names every pipeline it holds."""
    other = open_store(store_url, pipeline="emea", create=True)
    try:
        store.record_pass(_record(1))
        other.record_pass(_record(2, pipeline="emea"))
        assert [p.counts["pulled"] for p in store.recent_passes(10)] == [1]
        assert [p.counts["pulled"] for p in other.recent_passes(10)] == [2]
        assert store.pipelines() == other.pipelines() == ["default", "emea"]
    finally:
        other.close()


def test_ping_answers_and_no_lease_holder_is_known(store: StateStore) -> None:
    """A reachable store answers the liveness query; without leases nobody holds one."""
    store.ping()
    assert store.lease_holder() is None
