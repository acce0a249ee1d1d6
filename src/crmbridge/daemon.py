"""The poll loop behind ``crmbridge run``: one pass, wait, repeat, until asked to stop.

Signal handlers only set an Event. The pipeline checks it between pages, so SIGTERM/SIGINT end
the process after the current page is committed, never in the middle of one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import structlog

from crmbridge.errors import ConfigError
from crmbridge.model import PassSummary
from crmbridge.pipeline import SyncPipeline

#: Consecutive passes that crashed on an unexpected error before the daemon gives up.
MAX_CONSECUTIVE_CRASHES = 5

EXIT_OK = 0
EXIT_STOPPED_EARLY = 1
EXIT_CONFIG = 2
EXIT_FATAL = 3

log = structlog.get_logger(__name__)


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


def run_loop(
    pipeline: SyncPipeline,
    *,
    poll_interval_s: float,
    stop: threading.Event,
    once: bool = False,
    dry_run: bool = False,
    on_pass: Callable[[PassSummary], None] | None = None,
) -> int:
    """Run passes until ``stop`` is set (or once); return the process exit code."""
    crashes = 0
    while True:
        try:
            summary = pipeline.run_pass(dry_run=dry_run)
        except ConfigError:
            raise  # a person must fix a file or a setting: the caller prints it and exits 2
        except Exception:
            # A bug must not take the service down for good: the cursor is where the last
            # committed page left it, so the next pass repeats at most one page.
            crashes += 1
            log.exception("pass_crashed", consecutive=crashes)
            if once or crashes >= MAX_CONSECUTIVE_CRASHES:
                return EXIT_FATAL
        else:
            crashes = 0
            log.info("pass_finished", **summary_fields(summary))
            if on_pass is not None:
                on_pass(summary)
            if summary.fatal:
                return EXIT_FATAL
            if once:
                return EXIT_STOPPED_EARLY if summary.stopped_early else EXIT_OK
        if stop.is_set() or stop.wait(poll_interval_s):
            log.info("stop_requested")
            return EXIT_OK


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
        "dry_run": summary.dry_run,
    }
