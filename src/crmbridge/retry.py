"""Bounded, honest retries (docs/traps.md#trap-20) with tenacity: Retry-After first, exponential
jitter after.

Only ``RetryableApiError`` is retried. A wait longer than the whole retry budget (a daily
limit's hours-long Retry-After, say) is not slept through: the error is raised at once so the
pass stops with its cursor kept. The sleeper is injected, so tests never sleep for real.

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
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_when_event_set,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from crmbridge.errors import CallInterruptedError, RetryableApiError
from crmbridge.settings import RetrySettings

T = TypeVar("T")
#: Waits the given seconds; may return early (the stop Event's ``wait`` is one).
Sleeper = Callable[[float], object]
#: How often a caller waiting for a call's answer looks at the stop Event.
STOP_POLL_S = 0.2
DEFAULT_STOP_GRACE_S = 10.0

log = structlog.get_logger(__name__)


class StopOnLongRetryAfter(stop_base):
    """Stop when the remote asks for a wait longer than the whole retry budget."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome else None
        return (
            isinstance(exc, RetryableApiError)
            and exc.retry_after_s is not None
            and exc.retry_after_s > self.limit_s
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
    ) -> None:
        self.system = system
        self.settings = settings
        self.stop = stop if stop is not None else threading.Event()
        self.sleep: Sleeper = sleep if sleep is not None else self.stop.wait
        self.stop_grace_s = stop_grace_s
        self.retries = 0  # how many retries this policy performed (a metric)
        self._backoff = wait_random_exponential(multiplier=0.5, max=settings.max_wait_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableApiError) and exc.retry_after_s is not None:
            return max(0.0, exc.retry_after_s)
        return float(self._backoff(state))

    def _sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying",
            system=self.system,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(exc),
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn``, retrying ``RetryableApiError`` within the budget; re-raise the last one.

        A Retry-After longer than the whole budget is not slept through: the error is raised
        at once, so the pass stops with its cursor kept and the next pass tries again. A stop
        request ends retrying (see the module docstring): ``CallInterruptedError``."""
        settings = self.settings
        last_error: list[BaseException] = []

        def _attempt() -> T:
            if last_error and self.stop.is_set():
                # The wait before this retry ended because a stop was requested.
                raise CallInterruptedError(
                    self.system, f"stop requested while waiting to retry ({last_error[-1]})"
                )
            try:
                return call_until_stopped(
                    fn, stop=self.stop, grace_s=self.stop_grace_s, system=self.system
                )
            except RetryableApiError as exc:
                last_error.append(exc)
                raise

        retrying = Retrying(
            retry=retry_if_exception_type(RetryableApiError),
            wait=self._wait,
            stop=stop_any(
                stop_after_attempt(settings.max_attempts),
                stop_after_delay(settings.max_total_s),
                StopOnLongRetryAfter(settings.max_total_s),
                stop_when_event_set(self.stop),
            ),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(_attempt)
