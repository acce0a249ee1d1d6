"""Bounded, honest retries (docs/traps.md#trap-20) with tenacity: Retry-After first, exponential
jitter after.

Only ``RetryableApiError`` is retried, and retrying is bounded **by time first**: a call is
tried again until ``RetrySettings.max_total_s`` has passed since its first attempt (the last
wait is cut so that the final attempt falls on the deadline). Under a burst of transient
faults (30 % of Salesforce's answers failing, say) a call therefore keeps its whole budget
instead of giving up after a handful of quick failures. ``max_attempts`` is only a far
backstop. Time is the larger of the real time passed and the waits asked for, so a test's
sleeper that does not really sleep still meets the budget.

A wait longer than what is left of the budget (a daily limit's hours-long Retry-After, say)
is not slept through: the error is raised at once so the pass stops with its cursor kept. The
sleeper is injected, so tests never sleep for real. Every failed attempt and every retry is
told to the ``CallObserver`` (metrics).

A stop request (SIGTERM) must end a process well inside systemd's ``TimeoutStopSec``, so it
ends retrying at once:

- the default sleeper waits on the stop Event, so a stop cuts a retry wait short, and no
  attempt follows a wait that a stop request ended;
- each attempt runs on a worker thread while the caller waits on the stop Event too: a call
  still without an answer ``stop_grace_s`` after the stop request is abandoned (its page is
  not committed; the next pass repeats it, and upserts by external id make that harmless).

Both raise ``CallInterruptedError``, a ``RetryableApiError`` the pipeline already treats as
"stop the pass, keep the cursor". Each HTTP call also carries its own connect and read
timeouts (see the adapters), so a hung call ends even when nobody asks for a stop.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_when_event_set,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from crmbridge.errors import CallInterruptedError, CrmBridgeError, RetryableApiError
from crmbridge.observe import CallObserver, NullCallObserver
from crmbridge.settings import RetrySettings

T = TypeVar("T")
#: Waits the given seconds; may return early (the stop Event's ``wait`` is one).
Sleeper = Callable[[float], object]
#: How often a caller waiting for a call's answer looks at the stop Event.
STOP_POLL_S = 0.2
DEFAULT_STOP_GRACE_S = 10.0

log = structlog.get_logger(__name__)


class TimeBudget:
    """The time a call may spend retrying: ``total_s`` from its first attempt.

    Time passed is the larger of the real (monotonic) time and the waits asked for, so the
    budget holds both when the sleeper really sleeps and when a test's sleeper returns at once.
    """

    def __init__(self, total_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.total_s = total_s
        self._monotonic = monotonic

    def remaining_s(self, state: RetryCallState) -> float:
        real_s = self._monotonic() - state.start_time
        return self.total_s - max(real_s, state.idle_for)


class StopWhenBudgetSpent(stop_base):
    """Stop when the time budget is spent, or when the remote asks for a wait (Retry-After)
    longer than what is left of it."""

    def __init__(self, budget: TimeBudget) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        remaining = self.budget.remaining_s(retry_state)
        if remaining <= 0:
            return True
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome else None
        return (
            isinstance(exc, RetryableApiError)
            and exc.retry_after_s is not None
            and exc.retry_after_s > remaining
        )


def call_until_stopped(
    fn: Callable[[], T], *, stop: threading.Event, grace_s: float, system: str
) -> T:
    """``fn()`` on a worker thread; raise ``CallInterruptedError`` when it has not returned
    ``grace_s`` after ``stop`` is set. The abandoned thread is a daemon: it ends with the
    process, or when its own read timeout fires."""
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def _work() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the waiting caller, which re-raises it
            outcome.append((False, exc))
        finally:
            done.set()

    # The worker sees the caller's context variables (structlog's bound context among them).
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(_work,), name=f"{system}-call", daemon=True).start()
    while not done.wait(STOP_POLL_S):
        if stop.is_set() and not done.wait(grace_s):
            raise CallInterruptedError(
                system, f"stop requested; abandoned a call still unanswered after {grace_s:g} s"
            )
    succeeded, value = outcome[0]
    if succeeded:
        return value  # type: ignore[no-any-return]
    raise value


class RetryPolicy:
    """Runs a call with the retry budget of ``RetrySettings``; one instance per remote system.

    ``stop`` is the process's stop Event (a fresh one, never set, when not given); ``sleep``
    defaults to waiting on it."""

    def __init__(
        self,
        system: str,
        settings: RetrySettings,
        *,
        sleep: Sleeper | None = None,
        stop: threading.Event | None = None,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
        observer: CallObserver | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.settings = settings
        self.stop = stop if stop is not None else threading.Event()
        self.sleep: Sleeper = sleep if sleep is not None else self.stop.wait
        self.stop_grace_s = stop_grace_s
        self.observer: CallObserver = observer or NullCallObserver()
        self.retries = 0  # how many retries this policy performed (a metric)
        self._backoff = wait_random_exponential(multiplier=0.5, max=settings.max_wait_s)
        self._budget = TimeBudget(settings.max_total_s, monotonic)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableApiError) and exc.retry_after_s is not None:
            # Honoured as given; one longer than the budget left stops retrying instead.
            return max(0.0, exc.retry_after_s)
        # The last wait ends on the deadline, so the final attempt still gets its chance.
        remaining = max(0.0, self._budget.remaining_s(state))
        return min(float(self._backoff(state)), remaining)

    def _sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        self.observer.retried(self.system)
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying",
            system=self.system,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(exc),
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn``, retrying ``RetryableApiError`` until ``max_total_s`` has passed (or the
        far backstop of ``max_attempts``); re-raise the last one.

        A Retry-After longer than what is left of the budget is not slept through: the error
        is raised at once, so the pass stops with its cursor kept and the next pass tries
        again. A stop request ends retrying (see the module docstring):
        ``CallInterruptedError``."""
        settings = self.settings
        last_error: list[BaseException] = []

        def _attempt() -> T:
            if last_error and self.stop.is_set():
                # The wait before this retry ended because a stop was requested.
                raise CallInterruptedError(
                    self.system, f"stop requested while waiting to retry ({last_error[-1]})"
                )
            try:
                result = call_until_stopped(
                    fn, stop=self.stop, grace_s=self.stop_grace_s, system=self.system
                )
            except RetryableApiError as exc:
                last_error.append(exc)
                self.observer.call_failed(self.system, exc)
                raise
            except CrmBridgeError as exc:
                self.observer.call_failed(self.system, exc)
                raise
            self.observer.call_succeeded(self.system)
            return result

        retrying = Retrying(
            retry=retry_if_exception_type(RetryableApiError),
            wait=self._wait,
            stop=stop_any(
                StopWhenBudgetSpent(self._budget),
                stop_after_attempt(settings.max_attempts),
                stop_when_event_set(self.stop),
            ),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(_attempt)
