"""Retry policy: bounded, honours Retry-After, never sleeps for real in tests."""

from __future__ import annotations

import threading

import pytest

from crmbridge.errors import CallInterruptedError, RequestRejectedError, RetryableApiError
from crmbridge.retry import RetryPolicy
from crmbridge.settings import RetrySettings


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_retry_after_is_honoured() -> None:
    """A Retry-After value is the exact wait before the next attempt."""
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(max_attempts=3), sleep=slept.append)
    fn = Flaky([RetryableApiError("x", "slow down", status=429, retry_after_s=7)])
    assert policy.call(fn) == "ok"
    assert slept == [7]
    assert policy.retries == 1


def test_attempts_are_capped() -> None:
    """After max_attempts the last retryable error is raised, not swallowed."""
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(max_attempts=3), sleep=slept.append)
    fn = Flaky([RetryableApiError("x", f"fail {i}", status=503) for i in range(5)])
    with pytest.raises(RetryableApiError, match="fail 2"):
        policy.call(fn)
    assert fn.calls == 3
    assert len(slept) == 2


def test_wait_longer_than_budget_raises_at_once() -> None:
    """A Retry-After beyond the whole retry budget is not slept through."""
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(max_total_s=60), sleep=slept.append)
    fn = Flaky([RetryableApiError("x", "daily", status=429, retry_after_s=3600)])
    with pytest.raises(RetryableApiError, match="daily"):
        policy.call(fn)
    assert fn.calls == 1
    assert slept == []


def test_permanent_errors_are_not_retried() -> None:
    """A request the remote refused for good is raised after one attempt."""
    policy = RetryPolicy("x", RetrySettings(), sleep=lambda s: None)
    fn = Flaky([RequestRejectedError("x", "bad field", status=400, code="INVALID_FIELD")])
    with pytest.raises(RequestRejectedError):
        policy.call(fn)
    assert fn.calls == 1


def test_backoff_without_retry_after_is_bounded() -> None:
    """Without Retry-After the waits are exponential with jitter, each within max_wait_s."""
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(max_attempts=6, max_wait_s=3), sleep=slept.append)
    fn = Flaky([RetryableApiError("x", "503", status=503) for _ in range(5)])
    assert policy.call(fn) == "ok"
    assert len(slept) == 5
    assert all(0 <= s <= 3 for s in slept)


class Hung:
    """A call that blocks until released, like an HTTP call whose answer never comes."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        self.release.wait()
        return "late"


def test_stop_during_a_retry_wait_ends_retrying() -> None:
    """A stop requested while waiting to retry raises at once: no further attempt is made."""
    stop = threading.Event()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        stop.set()  # SIGTERM arrives during the wait

    policy = RetryPolicy("x", RetrySettings(max_attempts=6), sleep=sleep, stop=stop)
    fn = Flaky([RetryableApiError("x", f"503 number {i}", status=503) for i in range(5)])
    with pytest.raises(CallInterruptedError, match=r"stop requested.*503 number 0"):
        policy.call(fn)
    assert fn.calls == 1
    assert len(slept) == 1


def test_the_default_sleeper_is_cut_short_by_a_stop() -> None:
    """Without an injected sleeper, a long Retry-After wait ends when the stop Event is set."""
    stop = threading.Event()
    policy = RetryPolicy("x", RetrySettings(max_total_s=3600), stop=stop)
    fn = Flaky([RetryableApiError("x", "slow down", status=429, retry_after_s=3000)] * 2)
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    try:
        with pytest.raises(CallInterruptedError):
            policy.call(fn)
    finally:
        timer.cancel()
    assert fn.calls == 1


def test_failure_after_a_stop_is_not_retried() -> None:
    """When a stop is already requested, a failed call is raised as it is, without a retry."""
    stop = threading.Event()
    stop.set()
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(), sleep=slept.append, stop=stop)
    fn = Flaky([RetryableApiError("x", "503", status=503)])
    with pytest.raises(RetryableApiError, match="503"):
        policy.call(fn)
    assert fn.calls == 1
    assert slept == []


def test_a_call_made_after_a_stop_still_runs() -> None:
    """A stop request lets the current page's calls run: the first attempt is made."""
    stop = threading.Event()
    stop.set()
    policy = RetryPolicy("x", RetrySettings(), sleep=lambda s: None, stop=stop)
    assert policy.call(Flaky([])) == "ok"


def test_a_hung_call_is_abandoned_after_the_grace() -> None:
    """A call with no answer is given up once the stop grace has passed after a stop."""
    stop = threading.Event()
    hung = Hung()
    policy = RetryPolicy("x", RetrySettings(), stop=stop, stop_grace_s=0)
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    try:
        with pytest.raises(CallInterruptedError, match="abandoned a call"):
            policy.call(hung)
        assert hung.started.is_set()
        assert not hung.release.is_set()  # still in flight when it was abandoned
    finally:
        timer.cancel()
        hung.release.set()


def test_a_call_answering_within_the_grace_completes() -> None:
    """A call that answers soon after the stop request keeps its answer."""
    stop = threading.Event()

    def answers_after_the_stop() -> str:
        stop.set()
        return "answer"

    policy = RetryPolicy("x", RetrySettings(), stop=stop, stop_grace_s=30)
    assert policy.call(answers_after_the_stop) == "answer"


def test_errors_of_the_worker_reach_the_caller() -> None:
    """A permanent error raised on the worker thread is raised to the caller as it is."""
    policy = RetryPolicy("x", RetrySettings(), sleep=lambda s: None)
    fn = Flaky([ValueError("not an API error")])
    with pytest.raises(ValueError, match="not an API error"):
        policy.call(fn)
