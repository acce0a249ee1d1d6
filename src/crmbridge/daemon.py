"""The poll loop behind ``crmbridge run``: one pass, wait, repeat, until asked to stop.

Signal handlers only set an Event. The pipeline checks it between pages, so SIGTERM/SIGINT end
the process after the current page is committed, never in the middle of one.

A pass that crashes on an unexpected exception (a bug: per-contact errors are rejects and never
get here) is logged with its traceback and retried with a doubling backoff capped at
``CRASH_BACKOFF_MAX_S``, for ever: the cursor stays where the last committed page left it, and
an exit would only hand the same retry to systemd. One pass (``sync --once``) that crashes
exits ``EXIT_CRASHED`` (4), never 3, which means refused credentials and nothing else.

A pass that HubSpot or Salesforce refused for a reason other than credentials (TLS trust, the
API disabled for the org, missing scopes: ``PassSummary.blocked``) needs a person too, but the
fix is usually made on the other side (a permission granted, a scope added) with nothing to
change here. The daemon therefore keeps trying, with the same backoff as a crashed pass (never
more often than ``poll_interval_s``), and resumes by itself once the fix is made; one pass
exits ``EXIT_STOPPED_EARLY`` (1), as the same refusal does at start.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Protocol

import structlog

from crmbridge.errors import ConfigError, StateStoreError
from crmbridge.model import PassSummary

#: The wait before retrying a crashed (or blocked) pass doubles from this …
CRASH_BACKOFF_BASE_S = 30.0
#: … up to this, for as long as passes keep crashing (or being refused).
CRASH_BACKOFF_MAX_S = 900.0

#: While waiting between passes, edited mapping files are looked at this often (hot reload).
RELOAD_CHECK_S = 2.0

EXIT_OK = 0
EXIT_STOPPED_EARLY = 1
EXIT_CONFIG = 2
EXIT_FATAL = 3  # credentials refused, and only that
EXIT_CRASHED = 4  # one pass (--once) crashed on an unexpected error; the cursor is kept
EXIT_STATE_STORE = 5  # the state store cannot be used: a person must look at it

log = structlog.get_logger(__name__)


class PassRunner(Protocol):
    """What the loop runs: a ``SyncPipeline``, or one wrapped to report its passes."""

    def run_pass(self, *, dry_run: bool = False) -> PassSummary:
        """Run one pass; raise only for what a person must fix or a bug."""
        ...


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a clean stop after the current page; a second one stops at
    once (safe: a page's outcomes and cursor are one transaction).

    The handler only sets the Event and re-arms the default: it runs between two bytecodes of
    the main thread, which may be inside a log write holding the logger's lock, so logging
    here could deadlock."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        del frame
        stop.set()
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, default)

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def install_reload_handler(request: Callable[[], None]) -> None:
    """SIGHUP asks for the mapping files to be re-read (``request`` must only set a flag)."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        request()

    signal.signal(signal.SIGHUP, _handler)


def waiting_with(
    check: Callable[[], None], stop: threading.Event, *, every_s: float = RELOAD_CHECK_S
) -> Callable[[float], bool]:
    """A ``wait`` for :func:`run_loop` that calls ``check`` (hot reload) every ``every_s``
    seconds while it waits between passes; True when a stop was requested."""

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            check()
            left = deadline - time.monotonic()
            if left <= 0:
                return stop.is_set()
            if stop.wait(min(left, every_s)):
                return True

    return wait


def run_loop(
    pipeline: PassRunner,
    *,
    poll_interval_s: float,
    stop: threading.Event,
    once: bool = False,
    dry_run: bool = False,
    on_pass: Callable[[PassSummary], None] | None = None,
    wait: Callable[[float], bool] | None = None,
) -> int:
    """Run passes until ``stop`` is set (or once); return the process exit code.

    ``wait(seconds)`` sleeps between passes and returns True when a stop was requested
    meanwhile (default: ``stop.wait``). Raises ConfigError and StateStoreError (a person must
    act on either); every other exception of a pass
    is logged and the pass retried (the daemon) or reported as ``EXIT_CRASHED`` (once)."""
    wait = wait or stop.wait
    crashes = blocked = 0
    while True:
        pause_s = poll_interval_s
        try:
            summary = pipeline.run_pass(dry_run=dry_run)
        except (ConfigError, StateStoreError):
            raise  # a person must fix a file, a setting or the store: the caller says which
        except Exception:
            # A bug must not take the service down: the cursor is where the last committed
            # page left it, so the next pass repeats at most one page.
            crashes += 1
            pause_s = crash_backoff_s(crashes)
            log.exception("pass_crashed", consecutive=crashes, retry_in_s=pause_s)
            if once:
                return EXIT_CRASHED
        else:
            crashes = 0
            log.info("pass_finished", **summary_fields(summary))
            if on_pass is not None:
                on_pass(summary)
            if summary.credentials_refused:
                return EXIT_FATAL
            if once:
                return EXIT_STOPPED_EARLY if summary.stopped_early else EXIT_OK
            blocked = blocked + 1 if summary.blocked else 0
            if blocked:
                pause_s = max(poll_interval_s, crash_backoff_s(blocked))
                log.warning("pass_blocked", consecutive=blocked, retry_in_s=pause_s)
        if stop.is_set() or wait(pause_s):
            log.info("stop_requested")
            return EXIT_OK


def crash_backoff_s(crashes: int) -> float:
    """The wait before retrying after ``crashes`` consecutive crashed (or blocked) passes
    (30 s … 15 min)."""
    doublings = min(crashes - 1, 32)  # beyond the cap already; keeps the float finite
    return min(CRASH_BACKOFF_MAX_S, CRASH_BACKOFF_BASE_S * float(2**doublings))


def summary_fields(summary: PassSummary) -> dict[str, object]:
    return {
        "pulled": summary.pulled,
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "rejected": summary.rejected,
        "rejected_by_reason": summary.rejected_by_reason,
        "parked": summary.parked,
        "skipped": summary.skipped,
        "hubspot_calls": summary.hubspot_calls,
        "salesforce_calls": summary.salesforce_calls,
        "stopped_early": summary.stopped_early,
        "interrupted": summary.interrupted,
        "credentials_refused": summary.credentials_refused,
        "blocked": summary.blocked,
        "dry_run": summary.dry_run,
    }
