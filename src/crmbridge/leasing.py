"""Holding a pipeline's lease while its passes run: claim, heartbeat, stand by, fence pushes.

A :class:`LeaseKeeper` runs the rules of ``crmbridge.lease`` against the store's ``leases``
table for one pipeline:

- :meth:`LeaseKeeper.acquire` blocks until this runner holds the lease (or a stop). With a
  SQLite store it first takes an exclusive file lock beside the database (``fcntl.flock``): a
  second ``crmbridge run`` on the same file waits there, and logs ``lease_waiting`` with the
  holder's host and pid, read from the lock file. The lock dies with its process, so holding
  it proves every earlier runner is gone and the table lease is taken over at once. With
  PostgreSQL, replicas on any host wait as standbys (``lease_standby``) and take over once the
  holder's lease has gone ``CRMBRIDGE_LEASE_TIMEOUT_S`` without a renewal.
- A heartbeat thread renews the lease a few times per timeout. A renewal refused (another
  runner holds a newer token) or a store that has not answered for a whole timeout means the
  lease is lost: the keeper calls ``on_lost`` (the runner stops its pass) and stands by again.
- :class:`FencedSink` refuses to push once the last successful renewal is a timeout old,
  so a runner cut off from its store stops pushing before any standby may take over; the
  store's fence (every page commit checks the token) refuses its writes in any case.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import structlog

from crmbridge.errors import CrmBridgeError, LeaseLostError, RetryableApiError
from crmbridge.lease import (
    Claim,
    Fence,
    Holder,
    LeaseRecord,
    LeaseState,
    LeaseStatus,
    LeaseStore,
    claim,
    release,
    renew,
    renew_interval_s,
    still_safe,
)
from crmbridge.model import MappedLead, PushResult
from crmbridge.ports import ForwardingSink, LeadSink

log = structlog.get_logger(__name__)

#: A runner waiting for the file lock tries again this often.
FILE_LOCK_POLL_S = 1.0
#: The heartbeat notices a stop or a release within this long.
HEARTBEAT_WAKE_S = 0.25


class FileLock:
    """An exclusive ``flock`` on one file; the file holds the holder's identity (JSON)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def try_acquire(self, holder: Holder) -> bool:
        """Take the lock without waiting; True when this process now holds it."""
        if self._file is not None:
            return True
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": holder.host, "pid": holder.pid, "since": time.time()}))
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> dict[str, Any]:
        """Who holds the lock, as its holder wrote it ({} when unreadable or being written)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class LeaseKeeper:
    """Claims, renews and releases one pipeline's lease for this process (module docstring).

    ``stop`` is the process's stop Event: every wait ends when it is set. ``clock`` is a
    monotonic clock (the push guard), injectable for tests."""

    def __init__(
        self,
        pipeline: str,
        store: LeaseStore,
        *,
        timeout_s: float,
        stop: threading.Event,
        holder: Holder | None = None,
        file_lock: FileLock | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.timeout_s = timeout_s
        self.stop = stop
        self.holder = holder or Holder.this_process()
        self.fence = Fence(pipeline, self.holder)
        self.file_lock = file_lock
        self.clock = clock
        self._lock = threading.Lock()
        self._state = LeaseState(pipeline, LeaseStatus.WAITING, since=time.time())
        self._renewed_at = float("-inf")  # monotonic start of the last successful renewal
        self._heartbeat: threading.Thread | None = None
        self._lost = threading.Event()
        self._released = threading.Event()

    # -- what others read ---------------------------------------------------------------------
    @property
    def state(self) -> LeaseState:
        """This runner's view of the lease (held / standby / waiting, holder, since)."""
        with self._lock:
            return self._state

    def still_safe(self) -> bool:
        """True while this runner may push: it holds the lease and renewed it within the
        timeout (on its own clock, measured from when the renewal started)."""
        with self._lock:
            held = self._state.status is LeaseStatus.HELD and not self._lost.is_set()
            return held and still_safe(self._renewed_at, self.clock(), self.timeout_s)

    def _set(self, status: LeaseStatus, record: LeaseRecord | None) -> None:
        with self._lock:
            old = self._state
            host, pid, token = (record.host, record.pid, record.token) if record else ("", 0, 0)
            if old.status is status and (old.holder_host, old.holder_pid) == (host, pid):
                self._state = LeaseState(self.pipeline, status, host, pid, token, old.since)
                return
            self._state = LeaseState(self.pipeline, status, host, pid, token, time.time())

    # -- claiming -----------------------------------------------------------------------------
    def acquire(self) -> bool:
        """Block until this runner holds the lease; False when a stop came first. A store that
        stops answering is retried; one that cannot be used raises ``StateStoreError``."""
        self._lost.clear()
        self._released.clear()
        if self.file_lock is not None and not self._wait_for_file_lock():
            return False
        logged: tuple[str, int] | None = None
        while not self.stop.is_set():
            started = self.clock()
            try:
                answer = self.store.step(self.pipeline, self._claim_step)
            except RetryableApiError as exc:  # the store is away for now: keep trying
                log.warning("lease_store_unavailable", pipeline=self.pipeline, error=str(exc))
                self.stop.wait(renew_interval_s(self.timeout_s))
                continue
            assert isinstance(answer, Claim)
            current = answer.current
            if answer.granted:
                with self._lock:
                    self._renewed_at = started
                self.fence.token = current.token
                self._set(LeaseStatus.HELD, current)
                log.info(
                    "lease_acquired",
                    pipeline=self.pipeline,
                    holder=str(self.holder),
                    token=current.token,
                    timeout_s=self.timeout_s,
                )
                return True
            self._set(LeaseStatus.STANDBY, current)
            if logged != (current.host, current.pid):
                logged = (current.host, current.pid)
                log.info(
                    "lease_standby",
                    pipeline=self.pipeline,
                    holder_host=current.host,
                    holder_pid=current.pid,
                    token=current.token,
                    timeout_s=self.timeout_s,
                    hint="another runner holds this pipeline; this one takes over if that "
                    "one stops renewing its lease",
                )
            self.stop.wait(renew_interval_s(self.timeout_s))
        return False

    def _claim_step(self, current: LeaseRecord, now: float) -> tuple[LeaseRecord | None, Claim]:
        answer = claim(
            current,
            self.holder,
            now=now,
            timeout_s=self.timeout_s,
            exclusive=self.file_lock is not None,
        )
        return answer.lease, answer

    def _wait_for_file_lock(self) -> bool:
        assert self.file_lock is not None
        logged: dict[str, Any] | None = None
        while not self.file_lock.try_acquire(self.holder):
            holder = self.file_lock.holder()
            self._set(
                LeaseStatus.WAITING,
                LeaseRecord(self.pipeline, "?", str(holder.get("host", "")), _pid(holder)),
            )
            if holder != logged:
                logged = holder
                log.warning(
                    "lease_waiting",
                    pipeline=self.pipeline,
                    lock_file=str(self.file_lock.path),
                    holder_host=holder.get("host"),
                    holder_pid=holder.get("pid"),
                    hint="another crmbridge runs this pipeline on this state file; this one "
                    "starts when that one stops",
                )
            if self.stop.wait(FILE_LOCK_POLL_S):
                return False
        return True

    # -- holding ------------------------------------------------------------------------------
    def start_heartbeat(self, on_lost: Callable[[], None]) -> None:
        """Renew the lease in a thread until it is released or lost (then ``on_lost``)."""
        self._heartbeat = threading.Thread(
            target=self._beat,
            args=(on_lost,),
            name=f"lease-{self.pipeline}",
            daemon=True,
        )
        self._heartbeat.start()

    def _beat(self, on_lost: Callable[[], None]) -> None:
        token = self.fence.token
        assert token is not None
        interval = renew_interval_s(self.timeout_s)
        while self._pause(interval):
            if self.fence.token != token:
                return  # released
            started = self.clock()
            try:
                renewed = self.store.step(self.pipeline, self._renew_step(token))
            except CrmBridgeError as exc:
                log.warning("lease_renewal_failed", pipeline=self.pipeline, error=str(exc))
                if still_safe(self._renewed_at, self.clock(), self.timeout_s):
                    continue
                renewed = None
            if renewed is None:
                self._lose(on_lost)
                return
            with self._lock:
                self._renewed_at = started
        if self.stop.is_set():
            on_lost()  # the process stops: end the pass as a lost lease would

    def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the process stops or the lease is released."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, HEARTBEAT_WAKE_S)) or self._released.is_set():
                return False
        return not self._lost.is_set()

    def _renew_step(
        self, token: int
    ) -> Callable[[LeaseRecord, float], tuple[LeaseRecord | None, LeaseRecord | None]]:
        def step(current: LeaseRecord, now: float) -> tuple[LeaseRecord | None, LeaseRecord | None]:
            renewed = renew(current, self.holder, token, now=now, timeout_s=self.timeout_s)
            return renewed, renewed

        return step

    def _lose(self, on_lost: Callable[[], None]) -> None:
        self._lost.set()
        self.fence.token = None
        self._set(LeaseStatus.STANDBY, self._read_or_none())
        log.error(
            "lease_lost",
            pipeline=self.pipeline,
            holder=str(self.holder),
            hint="this runner was cut off from the state store for longer than the lease "
            "timeout, or paused; another runner may have taken over: this one stops pushing "
            "and stands by",
        )
        on_lost()

    def _read_or_none(self) -> LeaseRecord | None:
        try:
            return self.store.read(self.pipeline)
        except CrmBridgeError:
            return None

    def lost(self) -> bool:
        return self._lost.is_set()

    def release(self) -> None:
        """Give the lease up (a clean stop): a standby takes over at once, not after the
        timeout. Never raises; a lease that cannot be released simply expires."""
        token = self.fence.token
        self.fence.token = None
        self._released.set()
        if token is not None:
            try:
                self.store.step(
                    self.pipeline, lambda current, now: (release(current, self.holder, token), None)
                )
                log.info("lease_released", pipeline=self.pipeline, token=token)
            except CrmBridgeError as exc:
                log.warning("lease_release_failed", pipeline=self.pipeline, error=str(exc))
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
            self._heartbeat = None
        if self.file_lock is not None:
            self.file_lock.release()
        self._set(LeaseStatus.WAITING, None)


def _pid(holder: dict[str, Any]) -> int:
    pid = holder.get("pid")
    return pid if isinstance(pid, int) else 0


class FencedSink(ForwardingSink):
    """A ``LeadSink`` that pushes only while ``guard()`` says this runner holds its lease;
    otherwise ``upsert`` raises ``LeaseLostError`` and the pass stops with nothing pushed."""

    def __init__(self, inner: LeadSink, pipeline: str, guard: Callable[[], bool]) -> None:
        super().__init__(inner)
        self.pipeline = pipeline
        self.guard = guard

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        if not self.guard():
            raise LeaseLostError(
                self.pipeline,
                "this runner no longer holds the lease (not renewed within the lease timeout); "
                "the batch was not pushed",
            )
        return self.inner.upsert(leads)
