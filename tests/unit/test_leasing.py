"""Holding a lease: claim or stand by, renew on a heartbeat, notice a takeover, fence pushes."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from crmbridge.errors import LeaseLostError
from crmbridge.lease import Holder, LeaseRecord, LeaseStatus, Step, free
from crmbridge.leasing import FencedSink, FileLock, LeaseKeeper
from crmbridge.model import MappedLead
from crmbridge.testing import FakeLeadSink, reference_lead_schema

A = Holder("host-a", 101, "aaaa")
B = Holder("host-b", 202, "bbbb")


class MemoryLeases:
    """The leases table in memory, on a clock the test moves."""

    def __init__(self) -> None:
        self.rows: dict[str, LeaseRecord] = {}
        self.now = 1000.0
        self.lock = threading.Lock()

    def step(self, pipeline: str, decide: Step) -> Any:
        with self.lock:
            updated, answer = decide(self.rows.get(pipeline, free(pipeline)), self.now)
            if updated is not None:
                self.rows[pipeline] = updated
            return answer

    def read(self, pipeline: str) -> LeaseRecord:
        return self.rows.get(pipeline, free(pipeline))

    def read_all(self) -> list[LeaseRecord]:
        return list(self.rows.values())

    def close(self) -> None:
        """Nothing to release."""


def keeper(store: MemoryLeases, holder: Holder, stop: threading.Event, **kw: Any) -> LeaseKeeper:
    return LeaseKeeper("p", store, timeout_s=0.3, stop=stop, holder=holder, **kw)


def test_the_first_runner_holds_and_the_second_stands_by_naming_it() -> None:
    """A gets the lease; B, started later, is a standby that knows A's host and pid."""
    store, stop = MemoryLeases(), threading.Event()
    first = keeper(store, A, stop)
    assert first.acquire()
    assert first.state.status is LeaseStatus.HELD
    assert first.fence.token == 1
    second = keeper(store, B, stop)
    waiting = threading.Thread(target=second.acquire)
    waiting.start()
    deadline = time.monotonic() + 5
    while second.state.status is not LeaseStatus.STANDBY:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert (second.state.holder_host, second.state.holder_pid) == ("host-a", 101)
    first.release()
    waiting.join(timeout=5)
    assert second.state.status is LeaseStatus.HELD
    assert second.fence.token == 2
    stop.set()


def test_a_stop_ends_the_wait_of_a_standby() -> None:
    """acquire() returns False when the process stops while another runner holds the lease."""
    store, stop = MemoryLeases(), threading.Event()
    assert keeper(store, A, stop).acquire()
    standby = keeper(store, B, stop)
    threading.Timer(0.2, stop.set).start()
    assert not standby.acquire()


def test_a_takeover_is_noticed_by_the_heartbeat() -> None:
    """Another runner took the lease (A was paused): A's next renewal fails, on_lost is called,
    A stops pushing and gives up its fence token."""
    store, stop = MemoryLeases(), threading.Event()
    holder = keeper(store, A, stop)
    assert holder.acquire()
    lost = threading.Event()
    holder.start_heartbeat(on_lost=lost.set)
    assert holder.still_safe()
    with store.lock:
        store.rows["p"] = replace(store.rows["p"], holder=B.key, host="host-b", token=2)
    assert lost.wait(timeout=5)
    assert holder.lost()
    assert not holder.still_safe()
    assert holder.fence.token is None
    assert holder.state.status is LeaseStatus.STANDBY
    stop.set()


def test_the_heartbeat_keeps_the_lease_alive() -> None:
    """Renewals move the expiry while the store's clock moves; nobody else may claim."""
    store, stop = MemoryLeases(), threading.Event()
    holder = keeper(store, A, stop)
    assert holder.acquire()
    holder.start_heartbeat(on_lost=lambda: None)
    first_expiry = store.rows["p"].expires_at
    store.now += 0.2
    deadline = time.monotonic() + 5
    while store.rows["p"].expires_at <= first_expiry:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not store.rows["p"].expired(store.now)
    holder.release()
    assert not store.rows["p"].held
    stop.set()


def test_pushing_stops_once_the_last_renewal_is_a_timeout_old() -> None:
    """Cut off from the store, the holder stops pushing before a standby may take over."""
    store, stop = MemoryLeases(), threading.Event()
    clock = [0.0]
    holder = keeper(store, A, stop, clock=lambda: clock[0])
    assert holder.acquire()
    assert holder.still_safe()
    clock[0] = 0.3
    assert not holder.still_safe()


def test_a_fenced_sink_refuses_to_push_without_the_lease() -> None:
    """The batch is not sent, and the pass stops with LeaseLostError."""
    sink = FakeLeadSink(reference_lead_schema())
    fenced = FencedSink(sink, "p", guard=lambda: False)
    with pytest.raises(LeaseLostError, match="not renewed within the lease timeout"):
        fenced.upsert([MappedLead("1", {"HubSpot_Contact_Id__c": "1"})])
    assert sink.batches == []
    assert (
        FencedSink(sink, "p", guard=lambda: True)
        .upsert([MappedLead("1", {"HubSpot_Contact_Id__c": "1", "LastName": "Lima"})])[0]
        .success
    )


def test_a_file_lock_is_held_by_one_holder_and_names_it(tmp_path: Any) -> None:
    """The second lock on the file fails and reads the first holder's host and pid."""
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.try_acquire(A)
    assert not second.try_acquire(B)
    assert (second.holder()["host"], second.holder()["pid"]) == ("host-a", 101)
    first.release()
    assert second.try_acquire(B)
    second.release()
