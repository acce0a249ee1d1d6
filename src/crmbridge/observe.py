"""What a running pipeline tells whoever watches it: calls, retries and finished passes.

The pipeline and the adapters know only these small interfaces, never a metrics library:
``crmbridge.metrics`` turns them into Prometheus series, ``crmbridge.health`` into readiness,
and the state store keeps each ``PassRecord`` for ``crmbridge status``.

A ``PassRecord`` is one finished (or crashed) pass as data: its counts, why it stopped, how
long it took, where the cursor stood afterwards and the API headroom the adapters last saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from crmbridge.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    CallInterruptedError,
    FatalApiError,
    RateLimitedError,
    RequestRejectedError,
    RetryableApiError,
    SessionExpiredError,
)
from crmbridge.model import PassSummary

#: Reasons whose criterion starts so are Salesforce's refusals of a row, by error code.
SALESFORCE_CRITERION_PREFIX = "salesforce."

# The results a pass can end with (``PassRecord.result``).
RESULT_OK = "ok"
RESULT_STOPPED_EARLY = "stopped_early"  # outage, spent budget, store lost: cursor kept
RESULT_INTERRUPTED = "interrupted"  # a stop request ended it after a page
RESULT_BLOCKED = "blocked"  # a refusal a person must fix on the other side
RESULT_CREDENTIALS_REFUSED = "credentials_refused"
RESULT_CRASHED = "crashed"  # an unexpected exception (a bug); retried with a backoff
RESULT_DRY_RUN = "dry_run"
RESULTS = (
    RESULT_OK,
    RESULT_STOPPED_EARLY,
    RESULT_INTERRUPTED,
    RESULT_BLOCKED,
    RESULT_CREDENTIALS_REFUSED,
    RESULT_CRASHED,
    RESULT_DRY_RUN,
)
#: Results after which the pipeline did its job (a stop request ends a good pass early too).
SUCCESSFUL_RESULTS = frozenset({RESULT_OK, RESULT_INTERRUPTED, RESULT_DRY_RUN})


@dataclass(frozen=True)
class Headroom:
    """How much of one API budget is left, as the system's own headers last said."""

    system: str  # hubspot | salesforce
    budget: str  # daily | ten_secondly
    remaining: int
    limit: int


@dataclass(frozen=True)
class PassRecord:
    """One pass of one pipeline, as ``crmbridge status`` shows it and the store keeps it."""

    pipeline: str
    started_at: str  # ISO-8601 UTC
    finished_at: str
    duration_s: float
    result: str  # one of RESULTS
    error: str | None = None
    #: pulled, created, updated, unchanged, skipped, parked, rejected, flagged
    counts: Mapping[str, int] = field(default_factory=dict)
    #: rejected leads' reasons by criterion (``salesforce.CODE`` for Salesforce's refusals)
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    hubspot_calls: int = 0
    salesforce_calls: int = 0
    #: the cursor's ``lastmodifieddate`` (epoch ms) after the pass; 0 before any page
    cursor_ms: int = 0
    headroom: tuple[Headroom, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.result in SUCCESSFUL_RESULTS

    @property
    def failed_by_code(self) -> dict[str, int]:
        """Leads Salesforce refused, by its error code."""
        return {
            criterion.removeprefix(SALESFORCE_CRITERION_PREFIX): count
            for criterion, count in self.rejected_by_reason.items()
            if criterion.startswith(SALESFORCE_CRITERION_PREFIX)
        }

    @property
    def rejected_by_criterion(self) -> dict[str, int]:
        """Rejected leads' failed criteria (qualification, mapping, ``internal``), by name."""
        return {
            criterion: count
            for criterion, count in self.rejected_by_reason.items()
            if not criterion.startswith(SALESFORCE_CRITERION_PREFIX)
        }


def summary_counts(summary: PassSummary) -> dict[str, int]:
    """The lead counts of a pass summary, by name."""
    return {
        "pulled": summary.pulled,
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "skipped": summary.skipped,
        "parked": summary.parked,
        "rejected": summary.rejected,
        "flagged": summary.flagged,
    }


def summary_result(summary: PassSummary) -> str:
    """How a pass that returned its summary ended (one of ``RESULTS``)."""
    if summary.credentials_refused:
        return RESULT_CREDENTIALS_REFUSED
    if summary.blocked:
        return RESULT_BLOCKED
    if summary.stopped_early:
        return RESULT_STOPPED_EARLY
    if summary.interrupted:
        return RESULT_INTERRUPTED
    if summary.dry_run:
        return RESULT_DRY_RUN
    return RESULT_OK


def error_kind(error: BaseException) -> str:
    """A short, bounded label for a failed call: the remote's error code when it gave one
    (``SERVER_UNAVAILABLE``, ``TEN_SECONDLY_ROLLING`` …), else what kind of failure it was."""
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        return code
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (CallInterruptedError, "interrupted"),
        (RateLimitedError, "rate_limited"),
        (AuthenticationError, "authentication"),
        (BudgetExhaustedError, "budget"),
        (SessionExpiredError, "session_expired"),
        (RequestRejectedError, "request_rejected"),
        (FatalApiError, "refused"),
    )
    for kind, label in kinds:
        if isinstance(error, kind):
            return label
    if isinstance(error, RetryableApiError):
        status = error.status
        return f"http_{status}" if status else "unreachable"
    return "other"


class CallObserver(Protocol):
    """Told about every failed API call attempt and every retry, as they happen."""

    def call_failed(self, system: str, error: BaseException) -> None:
        """One attempt at a call to ``system`` failed with ``error`` (retried or not)."""
        ...

    def call_succeeded(self, system: str) -> None:
        """One attempt at a call to ``system`` was answered."""
        ...

    def retried(self, system: str) -> None:
        """A failed call to ``system`` is about to be tried again (after a wait)."""
        ...


class PassObserver(Protocol):
    """Told about every pass when it ends (or crashes)."""

    def pass_started(self, pipeline: str) -> None:
        """A pass of ``pipeline`` begins."""
        ...

    def pass_finished(self, record: PassRecord) -> None:
        """A pass ended as ``record`` says; must not raise."""
        ...


class NullCallObserver:
    """A ``CallObserver`` that ignores everything (the default)."""

    def call_failed(self, system: str, error: BaseException) -> None:
        del system, error

    def call_succeeded(self, system: str) -> None:
        del system

    def retried(self, system: str) -> None:
        del system


class CallObservers:
    """Several ``CallObserver``\\ s as one."""

    def __init__(self, *observers: CallObserver) -> None:
        self._observers = observers

    def call_failed(self, system: str, error: BaseException) -> None:
        for observer in self._observers:
            observer.call_failed(system, error)

    def call_succeeded(self, system: str) -> None:
        for observer in self._observers:
            observer.call_succeeded(system)

    def retried(self, system: str) -> None:
        for observer in self._observers:
            observer.retried(system)
