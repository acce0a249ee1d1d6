"""Bounded, honest retries (trap 20) with tenacity: Retry-After first, exponential jitter after.

Only ``RetryableApiError`` is retried. A wait longer than the whole retry budget (a daily
limit's hours-long Retry-After, say) is not slept through: the error is raised at once so the
pass stops with its cursor kept. The sleeper is injected, so tests never sleep for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from crmbridge.errors import RetryableApiError
from crmbridge.settings import RetrySettings

T = TypeVar("T")
Sleeper = Callable[[float], None]

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


class RetryPolicy:
    """Runs a call with the retry budget of ``RetrySettings``; one instance per remote system."""

    def __init__(
        self, system: str, settings: RetrySettings, *, sleep: Sleeper = time.sleep
    ) -> None:
        self.system = system
        self.settings = settings
        self.sleep = sleep
        self.retries = 0  # how many retries this policy performed (a metric)
        self._backoff = wait_random_exponential(multiplier=0.5, max=settings.max_wait_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableApiError) and exc.retry_after_s is not None:
            return max(0.0, exc.retry_after_s)
        return float(self._backoff(state))

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
        at once, so the pass stops with its cursor kept and the next pass tries again."""
        settings = self.settings
        retrying = Retrying(
            retry=retry_if_exception_type(RetryableApiError),
            wait=self._wait,
            stop=stop_any(
                stop_after_attempt(settings.max_attempts),
                stop_after_delay(settings.max_total_s),
                StopOnLongRetryAfter(settings.max_total_s),
            ),
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(fn)
