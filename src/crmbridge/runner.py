"""``crmbridge run`` and ``sync``: every configured pipeline, each under its own lease.

One pipeline (the environment alone, pipeline ``default``) runs in the calling thread, so its
errors reach the command as they always did. Several pipelines run one thread each; an error
that stops one (a wrong file, an unusable store, refused credentials) is logged with the
pipeline's name and never stops another. The exit code is then the largest of theirs.

Each pipeline's thread:

1. builds its app (the store must exist, the files must be valid),
2. waits for its lease (``leasing.LeaseKeeper``: a file lock on SQLite, a lease row on
   PostgreSQL); meanwhile it is ``waiting`` or ``standby``,
3. runs passes (``daemon.run_loop``) while a heartbeat renews the lease,
4. on a lost lease stops at once (no push, no commit) and goes back to 2; on a stop, releases
   the lease so a standby takes over at once.

:meth:`Supervisor.lease_states` tells health and status where each pipeline stands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from crmbridge.bootstrap import App, build_app
from crmbridge.daemon import (
    EXIT_CONFIG,
    EXIT_FATAL,
    EXIT_OK,
    EXIT_STATE_STORE,
    EXIT_STOPPED_EARLY,
    install_reload_handler,
    run_loop,
)
from crmbridge.errors import (
    AuthenticationError,
    ConfigError,
    FatalApiError,
    RequestRejectedError,
    RetryableApiError,
    StateStoreError,
)
from crmbridge.lease import LeaseState, LeaseStatus
from crmbridge.leasing import FileLock, LeaseKeeper
from crmbridge.model import PassSummary
from crmbridge.pipelines import PipelineSpec
from crmbridge.ports import StateStore
from crmbridge.service import (
    Watchers,
    console_for,
    lease_check,
    open_app,
    runnable,
    start_web,
    watch,
)
from crmbridge.settings import Settings
from crmbridge.state import lease_lock_path, open_leases

log = structlog.get_logger(__name__)

#: Called after each pass of ``once`` / ``dry_run`` runs with the pipeline's name.
OnPass = Callable[[str, PassSummary], None]

_API_ERRORS = (FatalApiError, RetryableApiError, RequestRejectedError)


@dataclass
class _Slot:
    spec: PipelineSpec
    keeper: LeaseKeeper | None = None
    code: int = EXIT_OK
    #: Set by a stop of the process or a lost lease: every wait of the pipeline ends.
    stop: threading.Event = field(default_factory=threading.Event)


class Supervisor:
    """Runs ``specs`` until ``stop`` is set (or one pass each with ``once``)."""

    def __init__(
        self,
        specs: Sequence[PipelineSpec],
        *,
        stop: threading.Event,
        once: bool = False,
        dry_run: bool = False,
        on_pass: OnPass | None = None,
        watchers: Watchers | None = None,
    ) -> None:
        self.watchers = watchers if watchers is not None else Watchers()
        self.stop = stop
        self.once = once or dry_run
        self.dry_run = dry_run
        self.on_pass = on_pass
        self._slots = {spec.name: _Slot(spec) for spec in specs}

    def lease_states(self) -> dict[str, LeaseState]:
        """Each pipeline's lease as this process sees it (``waiting`` before its keeper starts)."""
        return {
            name: slot.keeper.state
            if slot.keeper is not None
            else LeaseState(name, LeaseStatus.WAITING)
            for name, slot in self._slots.items()
        }

    def run(self) -> int:
        """Run every pipeline; the exit code (the largest of the pipelines')."""
        slots = list(self._slots.values())
        threading.Thread(target=self._pass_stop_on, daemon=True, name="stop-relay").start()
        if len(slots) == 1:
            return self._run_one(slots[0])
        threads = [
            threading.Thread(target=self._guarded, args=(slot,), name=f"pipeline-{slot.spec.name}")
            for slot in slots
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # the main thread stays free for signal handlers
        return max(slot.code for slot in slots)

    def _pass_stop_on(self) -> None:
        """A stop of the process stops every pipeline (their waits watch their own Event)."""
        self.stop.wait()
        for slot in self._slots.values():
            slot.stop.set()

    def _guarded(self, slot: _Slot) -> None:
        """One pipeline's thread: its errors end it alone, logged with its name."""
        name = slot.spec.name
        try:
            slot.code = self._run_one(slot)
        except ConfigError as exc:
            slot.code = EXIT_CONFIG
            log.error(  # noqa: TRY400 - every problem is in the message, a traceback adds nothing
                "pipeline_configuration_error",
                pipeline=name,
                problems=[str(problem) for problem in exc.problems],
            )
        except StateStoreError as exc:
            slot.code = EXIT_STATE_STORE
            log.error(  # noqa: TRY400
                "state_store_unusable",
                pipeline=name,
                store=exc.location,
                problem=exc.problem,
                hint=exc.hint,
            )
        except _API_ERRORS as exc:
            slot.code = EXIT_FATAL if isinstance(exc, AuthenticationError) else EXIT_STOPPED_EARLY
            log.error("pipeline_cannot_start", pipeline=name, error=str(exc))  # noqa: TRY400
        except Exception:
            slot.code = EXIT_STOPPED_EARLY
            log.exception("pipeline_crashed", pipeline=name)

    def _run_one(self, slot: _Slot) -> int:
        spec = slot.spec
        # Every line this thread logs names its pipeline (threads start with empty contexts).
        structlog.contextvars.bind_contextvars(pipeline=spec.name)
        settings = spec.settings
        on_pass = self.on_pass
        summary_to: Callable[[PassSummary], None] | None = (
            (lambda summary: on_pass(spec.name, summary)) if on_pass is not None else None
        )
        if self.dry_run:
            return self._dry_run(spec, summary_to)
        local_stop = slot.stop
        opened: StateStore | None = None
        leases = None
        keeper: LeaseKeeper | None = None
        app: App | None = None
        try:
            leases = open_leases(settings.state_url)
            lock_path = lease_lock_path(settings.state_url, spec.name)
            keeper = LeaseKeeper(
                spec.name,
                leases,
                timeout_s=settings.lease_timeout_s,
                stop=self.stop,
                file_lock=FileLock(lock_path) if lock_path is not None else None,
            )
            slot.keeper = keeper
            watched = watch(self.watchers, spec.name, settings, store=lambda: opened)
            watched.health.lease = lambda: lease_check(keeper.state)
            # Opening the store migrates it, leases table included: before the first claim.
            app = open_app(
                settings,
                watched=watched,
                stop=local_stop,
                keep_trying=not self.once,
                pipeline=spec.name,
                keeper=keeper,
            )
            if app is None:
                return EXIT_OK  # stopped while waiting for a system to answer
            opened = app.store
            loop = runnable(
                app,
                settings,
                watched=watched,
                watchers=self.watchers,
                stop=local_stop,
                daemon=not self.once,
            )
            while keeper.acquire():
                if not self.stop.is_set():
                    local_stop.clear()  # set by the lease lost before
                keeper.start_heartbeat(on_lost=local_stop.set)
                code = run_loop(
                    loop.passes,
                    poll_interval_s=settings.poll_interval_s,
                    stop=local_stop,
                    once=self.once,
                    on_pass=summary_to,
                    wait=loop.wait,
                )
                if not keeper.lost() or self.stop.is_set():
                    return code
                if self.once:
                    return EXIT_STOPPED_EARLY
                log.warning("pipeline_standing_by", pipeline=spec.name)
            return EXIT_OK
        finally:
            if keeper is not None:
                keeper.release()
            if app is not None:
                app.close()
            if leases is not None:
                leases.close()

    def _dry_run(self, spec: PipelineSpec, on_pass: Callable[[PassSummary], None] | None) -> int:
        """One judged pass that writes nothing, so it needs no lease."""
        settings = spec.settings
        app = build_app(settings, stop=self.stop, dry_run=True, pipeline=spec.name)
        try:
            return run_loop(
                app.pipeline,
                poll_interval_s=settings.poll_interval_s,
                stop=self.stop,
                once=True,
                dry_run=True,
                on_pass=on_pass,
            )
        finally:
            app.close()


def run_service(
    settings: Settings,
    specs: Sequence[PipelineSpec],
    *,
    stop: threading.Event,
    once: bool = False,
    dry_run: bool = False,
    on_pass: OnPass | None = None,
) -> int:
    """``crmbridge run`` / ``sync``: every pipeline of ``specs`` under its lease; the daemon
    also serves /healthz, /readyz and /metrics (``settings.http``) for all of them (and the
    reviewer console under /console/ when ``CRMBRIDGE_CONSOLE__ENABLED``), and SIGHUP
    re-reads every pipeline's mapping files. The exit code (the largest of the pipelines')."""
    watchers = Watchers()
    daemon = not (once or dry_run)
    if daemon:
        install_reload_handler(watchers.request_reload)
    console = console_for(settings) if daemon else None
    try:
        web = (
            start_web(settings.http, watchers.health, watchers.metrics, console)
            if daemon and settings.http.enabled
            else None
        )
    except BaseException:
        if console is not None:
            console.close()
        raise
    try:
        return Supervisor(
            specs, stop=stop, once=once, dry_run=dry_run, on_pass=on_pass, watchers=watchers
        ).run()
    finally:
        if web is not None:
            web.stop()
        if console is not None:
            console.close()
