"""Who may run a pipeline: the lease rules, as pure functions of the stored lease and the time.

One runner at a time writes a pipeline's state and pushes its leads. The right to do so is a
lease, one row per pipeline in the state store (``leases``): the holder's identity, a fencing
token and when the lease expires unless renewed. This module decides; ``state/leases.py`` only
persists what it decides, and ``leasing.py`` runs the decisions on a heartbeat.

- **Claim** (:func:`claim`): a free lease (never held, released, or expired) is taken with the
  next token; a lease held by another runner and not expired is waited for. A runner that proves
  by other means that nobody else can hold it (``exclusive``: it holds the SQLite file lock on
  this host, so every other runner of this store is dead or waiting) takes it at once.
- **Renew** (:func:`renew`): only the holder with the same token extends the lease; anything
  else means the lease was lost (taken over after it expired), and the runner must stop.
- **Fence** (:func:`fence_holds`): a page is committed only while the lease row still carries
  the committer's holder and token. A runner that was paused or cut off past its lease, and
  replaced, therefore cannot write: its token is older than the row's.

Tokens only grow: releasing a lease keeps its token, so a token is never handed out twice.
Times are seconds since the epoch from one clock per store (PostgreSQL's, for replicas on
several hosts).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

#: A lease not renewed for this long may be taken over (``CRMBRIDGE_LEASE_TIMEOUT_S``).
DEFAULT_LEASE_TIMEOUT_S = 30.0
#: The holder renews this many times per lease timeout.
RENEWALS_PER_TIMEOUT = 3


@dataclass(frozen=True)
class Holder:
    """One running process: its host and pid, and a random id so a restarted process with a
    reused pid is never taken for its predecessor."""

    host: str
    pid: int
    run_id: str

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])

    @property
    def key(self) -> str:
        """The identity stored in the lease row."""
        return f"{self.host}:{self.pid}:{self.run_id}"

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid}"


@dataclass(frozen=True)
class LeaseRecord:
    """The stored lease of one pipeline. ``holder`` is empty when nobody holds it."""

    pipeline: str
    holder: str = ""
    host: str = ""
    pid: int = 0
    token: int = 0
    acquired_at: float = 0.0
    renewed_at: float = 0.0
    expires_at: float = 0.0

    @property
    def held(self) -> bool:
        return bool(self.holder)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def held_by(self, holder: Holder) -> bool:
        return self.holder == holder.key


class LeaseStatus(StrEnum):
    """Where a runner stands with its pipeline's lease."""

    HELD = "held"  # this runner holds it and runs passes
    STANDBY = "standby"  # another runner holds it; this one takes over when it expires
    WAITING = "waiting"  # not yet known (starting), or waiting for a file lock on this host


@dataclass(frozen=True)
class LeaseState:
    """What health and status read about one pipeline's lease, as this runner sees it."""

    pipeline: str
    status: LeaseStatus
    holder_host: str = ""
    holder_pid: int = 0
    token: int = 0
    since: float = 0.0  # when this runner entered ``status``

    @property
    def holder(self) -> str:
        return f"{self.holder_host} pid {self.holder_pid}" if self.holder_host else ""


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: the lease as it is to be stored (``None``: unchanged), and
    whether the claimant now holds it."""

    lease: LeaseRecord | None
    granted: bool
    current: LeaseRecord


def free(pipeline: str) -> LeaseRecord:
    """The lease of a pipeline nobody ever held."""
    return LeaseRecord(pipeline)


def claim(
    current: LeaseRecord, holder: Holder, *, now: float, timeout_s: float, exclusive: bool = False
) -> Claim:
    """Claim ``current`` for ``holder`` at ``now``.

    Granted (with a new, larger token) when the lease is free or expired, or ``exclusive``;
    granted with the same token when ``holder`` already holds it (a renewal); refused while
    another holder's lease runs."""
    if current.held_by(holder):
        renewed = renew(current, holder, current.token, now=now, timeout_s=timeout_s)
        if renewed is not None:
            return Claim(renewed, True, renewed)
    if current.held and not current.expired(now) and not exclusive:
        return Claim(None, False, current)
    taken = LeaseRecord(
        pipeline=current.pipeline,
        holder=holder.key,
        host=holder.host,
        pid=holder.pid,
        token=current.token + 1,
        acquired_at=now,
        renewed_at=now,
        expires_at=now + timeout_s,
    )
    return Claim(taken, True, taken)


def renew(
    current: LeaseRecord, holder: Holder, token: int, *, now: float, timeout_s: float
) -> LeaseRecord | None:
    """The lease extended to ``now + timeout_s``; ``None`` when ``holder`` with ``token`` no
    longer holds it (another runner took over, or it was released)."""
    if not fence_holds(current, holder, token):
        return None
    return replace(current, renewed_at=now, expires_at=max(current.expires_at, now + timeout_s))


def release(current: LeaseRecord, holder: Holder, token: int) -> LeaseRecord | None:
    """The lease freed by its holder (token kept); ``None`` when it was not theirs to free."""
    if not fence_holds(current, holder, token):
        return None
    return replace(current, holder="", host="", pid=0, expires_at=0.0)


def fence_holds(current: LeaseRecord | None, holder: Holder, token: int) -> bool:
    """True while the stored lease still names ``holder`` with ``token``: a write of theirs
    may go ahead. An expired lease that nobody took over still holds (nobody else wrote)."""
    return current is not None and current.held_by(holder) and current.token == token


def renew_interval_s(timeout_s: float) -> float:
    """How often the holder renews: a few times per timeout, so one slow renewal is no loss."""
    return timeout_s / RENEWALS_PER_TIMEOUT


def still_safe(renewal_started: float, now: float, timeout_s: float) -> bool:
    """Whether a holder may still push, ``now`` on its own monotonic clock: until
    ``timeout_s`` after the start of its last successful renewal. The stored expiry is at least
    that late, so a runner cut off from the store stops pushing before anyone may take over."""
    return now - renewal_started < timeout_s


class Fence:
    """The lease a runner believes it holds, which the state store checks inside every page
    commit (:func:`fence_holds`). ``token`` is ``None`` while the runner holds no lease."""

    def __init__(self, pipeline: str, holder: Holder) -> None:
        self.pipeline = pipeline
        self.holder = holder
        self.token: int | None = None


#: What a lease step decides from the stored lease and the store's time: the row to store
#: (``None``: leave it as it is) and an answer for the caller.
Step = Callable[[LeaseRecord, float], tuple[LeaseRecord | None, Any]]


class LeaseStore(Protocol):
    """Where the leases of a state store's pipelines are kept; it persists, the functions
    above decide. Raises ``StateStoreUnavailableError`` when the store stops answering."""

    def step(self, pipeline: str, decide: Step) -> Any:
        """Lock ``pipeline``'s lease, let ``decide`` rule on it at the store's time, store the
        row it returns (if any) in the same transaction, and return its answer."""
        ...

    def read(self, pipeline: str) -> LeaseRecord:
        """The stored lease of ``pipeline`` (a free one when none was ever taken)."""
        ...

    def read_all(self) -> list[LeaseRecord]:
        """Every stored lease, by pipeline name."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...
