"""The whole crmbridge exception hierarchy, grouped by how a caller recovers.

::

    CrmBridgeError
    ├── ConfigError                 fatal: a setting or mapping file is wrong (file:line + hint)
    ├── FatalApiError               fatal for the pass: stop, alert, keep the cursor
    │   ├── AuthenticationError     bad/expired credentials that a replay cannot fix
    │   └── BudgetExhaustedError    a daily API budget is spent (resume when it recovers)
    ├── RetryableApiError           transient: 429, 5xx, lock, lost connection (retried)
    │   ├── RateLimitedError        429 / Salesforce concurrent-limit: honours ``retry_after_s``
    │   └── CallInterruptedError    a stop request ended retrying or abandoned a call in flight:
    │                               the pass stops with its cursor kept (never retried)
    ├── SessionExpiredError         Salesforce INVALID_SESSION_ID: re-authenticate once, replay
    └── RequestRejectedError        a permanent 4xx for a whole request (a client bug or config)

A failed qualification is never an exception: it is a ``Decision``. A single record that
Salesforce refuses is never an exception either: it becomes a ``RecordError`` on the
record's ``PushResult`` and then a reject.
"""

from __future__ import annotations

from dataclasses import dataclass


class CrmBridgeError(Exception):
    """Base class of every error crmbridge raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where in an admin's file a problem sits."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        if self.column is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a setting or a file, with where it is and how to fix it."""

    location: Location
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class ConfigError(CrmBridgeError):
    """A setting or a mapping file is wrong; the program stops with every problem listed."""

    def __init__(self, problems: list[ConfigProblem] | ConfigProblem) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("\n".join(str(p) for p in self.problems))


class FatalApiError(CrmBridgeError):
    """The remote system refused in a way retrying cannot fix; the pass stops, the cursor stays."""

    def __init__(self, system: str, message: str, *, code: str | None = None) -> None:
        self.system = system
        self.code = code
        super().__init__(f"{system}: {message}" + (f" ({code})" if code else ""))


class AuthenticationError(FatalApiError):
    """Credentials were refused (HubSpot 401, Salesforce INVALID_SESSION_ID after one replay)."""


class BudgetExhaustedError(FatalApiError):
    """A daily API budget (or the reserve left to humans) is spent; resume when it recovers."""


class RetryableApiError(CrmBridgeError):
    """A transient failure: the same request may succeed later."""

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.system = system
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s
        detail = ", ".join(
            part for part in (f"HTTP {status}" if status else "", code or "") if part
        )
        super().__init__(f"{system}: {message}" + (f" ({detail})" if detail else ""))


class RateLimitedError(RetryableApiError):
    """The remote system asked us to slow down (HTTP 429 or a concurrency limit)."""


class CallInterruptedError(RetryableApiError):
    """A stop request cut a retry wait short, or abandoned a call that had no answer within
    the stop grace. The pass stops with its cursor kept; the next pass repeats the call."""


class SessionExpiredError(CrmBridgeError):
    """Salesforce said INVALID_SESSION_ID: re-authenticate once and replay the request."""


class RequestRejectedError(CrmBridgeError):
    """A whole request was refused permanently (a 4xx that is neither auth nor rate limit)."""

    def __init__(
        self, system: str, message: str, *, status: int | None = None, code: str | None = None
    ) -> None:
        self.system = system
        self.status = status
        self.code = code
        super().__init__(f"{system}: {message}" + (f" ({code})" if code else ""))
