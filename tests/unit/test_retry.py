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


def test_a_burst_of_transient_failures_is_outlasted_within_the_time_budget() -> None:
    """Retrying is bounded by time, not by a handful of attempts: twelve quick 503s in a row
    (what 30 % faults produce now and then) still end in the answer."""
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(max_wait_s=1, max_total_s=300), sleep=slept.append)
    fn = Flaky([RetryableApiError("x", f"503 number {i}", status=503) for i in range(12)])
    assert policy.call(fn) == "ok"
    assert fn.calls == 13
    assert policy.retries == 12


def test_retrying_ends_when_the_time_budget_is_spent() -> None:
    """Waits add up to exactly the time budget, the last one cut to end on the deadline, and
    the last error is raised: the attempt cap is not what stops it."""
    slept: list[float] = []
    policy = RetryPolicy(
        "x", RetrySettings(max_attempts=1000, max_wait_s=5, max_total_s=30), sleep=slept.append
    )
    fn = Flaky([RetryableApiError("x", f"fail {i}", status=503) for i in range(1000)])
    with pytest.raises(RetryableApiError, match="fail"):
        policy.call(fn)
    assert sum(slept) == pytest.approx(30)
    assert fn.calls == len(slept) + 1
    assert fn.calls < 1000


def test_a_retry_after_longer_than_the_budget_left_stops_retrying() -> None:
    """A Retry-After that would end past the deadline is not waited for."""
    slept: list[float] = []
    policy = RetryPolicy("x", RetrySettings(max_total_s=60), sleep=slept.append)
    fn = Flaky(
        [
            RetryableApiError("x", "slow", status=429, retry_after_s=50),
            RetryableApiError("x", "slower", status=429, retry_after_s=20),
        ]
    )
    with pytest.raises(RetryableApiError, match="slower"):
        policy.call(fn)
    assert slept == [50]


class _Calls:
    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []
        self.succeeded: list[str] = []
        self.retried: list[str] = []

    def call_failed(self, system: str, error: BaseException) -> None:
        self.failed.append((system, str(error)))

    def call_succeeded(self, system: str) -> None:
        self.succeeded.append(system)

    def retried_(self, system: str) -> None:
        self.retried.append(system)


def test_the_observer_hears_every_failed_attempt_retry_and_answer() -> None:
    """Each failed attempt, each retry and the answer reach the call observer, by system."""
    heard = _Calls()

    class Observer:
        call_failed = heard.call_failed
        call_succeeded = heard.call_succeeded
        retried = heard.retried_

    policy = RetryPolicy("sf", RetrySettings(), sleep=lambda s: None, observer=Observer())
    fn = Flaky([RetryableApiError("sf", f"503 number {i}", status=503) for i in range(2)])
    assert policy.call(fn) == "ok"
    assert [system for system, _ in heard.failed] == ["sf", "sf"]
    assert heard.retried == ["sf", "sf"]
    assert heard.succeeded == ["sf"]
