"""Retry policy: bounded, honours Retry-After, never sleeps for real in tests."""

from __future__ import annotations

import pytest

from crmbridge.errors import RequestRejectedError, RetryableApiError
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
