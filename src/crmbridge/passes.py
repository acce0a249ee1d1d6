"""Each pass of a pipeline, timed and told to its observers as a ``PassRecord``.

``RecordedPipeline`` wraps a ``SyncPipeline`` for the daemon: it runs the pass exactly as
before and, when it ends (or crashes), builds the record (counts, result, duration, the
cursor afterwards, the API headroom the adapters last saw) and hands it to every observer:
the metrics, the readiness checks and the state store (``StateStore.record_pass``). An
observer that fails is logged and skipped: watching a pass must never break it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from crmbridge.errors import ConfigError, CrmBridgeError, StateStoreError
from crmbridge.model import PassSummary
from crmbridge.observe import (
    RESULT_CRASHED,
    Headroom,
    PassObserver,
    PassRecord,
    summary_counts,
    summary_result,
)
from crmbridge.pipeline import SyncPipeline

log = structlog.get_logger(__name__)

HeadroomSource = Callable[[], tuple[Headroom, ...]]


def iso_utc(epoch_s: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RecordedPipeline:
    """``pipeline`` with every pass reported to ``observers`` as a ``PassRecord``."""

    def __init__(
        self,
        pipeline: SyncPipeline,
        *,
        name: str,
        observers: Sequence[PassObserver],
        headroom: HeadroomSource = tuple,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.name = name
        self.observers = list(observers)
        self._headroom = headroom
        self._clock = clock
        self._monotonic = monotonic

    def run_pass(self, *, dry_run: bool = False) -> PassSummary:
        """Run one pass of the wrapped pipeline; raises what it raises, after reporting it."""
        for observer in self.observers:
            _safely(observer.pass_started, self.name)
        started_at, started = self._clock(), self._monotonic()
        calls_before = (self.pipeline.source.calls, self.pipeline.sink.calls)
        try:
            summary = self.pipeline.run_pass(dry_run=dry_run)
        except (ConfigError, StateStoreError):
            raise  # the process ends: a person must act (the log says why)
        except Exception as exc:
            summary = PassSummary(dry_run=dry_run)
            summary.hubspot_calls = self.pipeline.source.calls - calls_before[0]
            summary.salesforce_calls = self.pipeline.sink.calls - calls_before[1]
            self._report(summary, started_at, started, RESULT_CRASHED, _describe(exc))
            raise
        self._report(summary, started_at, started, summary_result(summary), summary.stopped_early)
        return summary

    def _report(
        self,
        summary: PassSummary,
        started_at: float,
        started: float,
        result: str,
        error: str | None,
    ) -> None:
        record = PassRecord(
            pipeline=self.name,
            started_at=iso_utc(started_at),
            finished_at=iso_utc(self._clock()),
            duration_s=round(self._monotonic() - started, 3),
            result=result,
            error=error,
            counts=summary_counts(summary),
            rejected_by_reason=dict(summary.rejected_by_reason),
            hubspot_calls=summary.hubspot_calls,
            salesforce_calls=summary.salesforce_calls,
            cursor_ms=self._cursor_ms(),
            headroom=self._headroom(),
        )
        for observer in self.observers:
            _safely(observer.pass_finished, record)

    def _cursor_ms(self) -> int:
        try:
            cursor = self.pipeline.store.get_cursor(self.pipeline.stream)
        except CrmBridgeError as exc:
            log.warning("pass_record_without_cursor", error=str(exc))
            return 0
        return cursor.modified_at_ms


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _safely(report: Callable[..., None], *args: object) -> None:
    try:
        report(*args)
    except Exception:
        log.exception("pass_observer_failed", observer=getattr(report, "__qualname__", "?"))
