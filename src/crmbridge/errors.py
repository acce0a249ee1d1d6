"""The whole crmbridge exception hierarchy, grouped by how a caller recovers.

::

    CrmBridgeError
    ├── ConfigError                 fatal: a setting or mapping file is wrong (file:line + hint)
    │   └── StateStoreMissingError  no state store where the settings point (``state init``)
    ├── StateStoreError             fatal: the state store cannot be used (unwritable, corrupted,
    │                               unreachable): a person must look at it (exit code 5)
    ├── FatalApiError               fatal for the pass: stop, alert, keep the cursor
    │   ├── AuthenticationError     bad/expired credentials that a replay cannot fix
    │   └── BudgetExhaustedError    a daily API budget is spent (resume when it recovers)
    ├── RetryableApiError           transient: 429, 5xx, lock, lost connection (retried)
    │   ├── RateLimitedError        429 / Salesforce concurrent-limit: honours ``retry_after_s``
    │   ├── CallInterruptedError    a stop request ended retrying or abandoned a call in flight:
    │   │                           the pass stops with its cursor kept (never retried)
    │   ├── StateStoreUnavailableError  the store went away mid-pass (PostgreSQL restarting,
    │   │                           SQLite locked past its timeout): the pass stops early
    │   └── LeaseLostError          another runner took over this pipeline's lease: the pass
    │                               stops before it pushes or commits again; this runner stands by
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


class StateStoreMissingError(ConfigError):
    """No state store where the settings point: a new one is made only by ``state init``."""


class StateStoreError(CrmBridgeError):
    """The state store cannot be used: unwritable, read-only, not a database, corrupted, or a
    database server that refuses the connection. Retrying does not help; a person must act.

    ``location`` names the store (an absolute path, or a URL without its password)."""

    def __init__(self, location: str, problem: str, *, hint: str) -> None:
        self.location = location
        self.problem = problem
        self.hint = hint
        super().__init__(f"state store {location}: {problem}\n    hint: {hint}")


class StateStoreUnavailableError(RetryableApiError):
    """The state store stopped answering during a pass (PostgreSQL down or restarting, the
    connection lost, SQLite locked by another writer past its busy timeout). Like an API
    outage, the pass stops early with its cursor kept; the next pass tries again. At start the
    same failure is a ``StateStoreError``: a store that cannot be reached then needs a person."""

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        super().__init__("state store", f"{location}: {problem}")


class LeaseLostError(RetryableApiError):
    """This runner no longer holds its pipeline's lease (it was paused or cut off past the lease
    timeout and another runner took over): the pass stops before its next push or commit, with
    nothing written, and the runner stands by."""

    def __init__(self, pipeline: str, message: str) -> None:
        self.pipeline = pipeline
        super().__init__("lease", f"pipeline {pipeline!r}: {message}")
