"""What a pipeline of ``crmbridge run`` and ``sync`` reports to, and how it is wired for it.

``runner.run_service`` starts the one web stack (``crmbridge.web``) with /healthz, /readyz and
/metrics on ``CRMBRIDGE_HTTP__HOST``:``CRMBRIDGE_HTTP__PORT`` (``start_web``) before anything
else, so a probe gets an answer (503 while starting) from the first second. Each pipeline then
registers with the process's :class:`Watchers` (``watch``), builds its app (``open_app``) and
runs its poll loop with every pass reported to the metrics, the readiness checks and the state
store (``runnable``; ``crmbridge status`` reads them back). One pass (``sync --once``) records
its result in the store too, and serves nothing.

HubSpot or Salesforce unreachable at start (the JWT login cannot be made, say) does not end the
daemon: it reports not ready, waits (the crash backoff, never longer than the poll interval)
and tries again, until the system answers or a stop is requested. Unreachable during a pass,
the pass stops with its cursor kept and the next one tries again (``daemon.run_loop``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog

from crmbridge.bootstrap import App, build_app
from crmbridge.daemon import crash_backoff_s, waiting_with
from crmbridge.errors import ConfigError, ConfigProblem, CrmBridgeError, Location, RetryableApiError
from crmbridge.health import LeaseCheck, PipelineHealth, ServiceHealth
from crmbridge.lease import LeaseState, LeaseStatus
from crmbridge.leasing import LeaseKeeper
from crmbridge.metrics import PipelineMetrics, SyncMetrics
from crmbridge.observe import CallObserver, CallObservers, Headroom, PassObserver, PassRecord
from crmbridge.passes import RecordedPipeline
from crmbridge.ports import StateStore
from crmbridge.reload import ConfigReloader
from crmbridge.settings import HttpSettings, Settings
from crmbridge.state import DEFAULT_PIPELINE
from crmbridge.web.app import create_app
from crmbridge.web.server import WebServer

if TYPE_CHECKING:
    from crmbridge.console.serve import ConsoleMount

log = structlog.get_logger(__name__)


class _Budgets(Protocol):
    """What the adapters say of their API budgets."""

    @property
    def api_usage(self) -> tuple[int, int] | None: ...


class StorePassLog:
    """A ``PassObserver`` keeping every pass result in the state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def pass_started(self, pipeline: str) -> None:
        del pipeline

    def pass_finished(self, record: PassRecord) -> None:
        try:
            self.store.record_pass(record)
        except CrmBridgeError as exc:  # the store is down: the pass said so already
            log.warning("pass_result_not_kept", error=str(exc))


def headroom(app: App) -> tuple[Headroom, ...]:
    """The API budgets left, as the adapters last saw them in the systems' headers."""
    rooms = []
    usage = app.sink.api_usage
    if usage is not None:
        used, total = usage
        rooms.append(Headroom("salesforce", "daily", max(total - used, 0), total))
    limits = app.source.rate_limits
    for budget, limit_key, left_key in (
        ("daily", "Daily", "Daily-Remaining"),
        ("ten_secondly", "Max", "Remaining"),
    ):
        if limit_key in limits and left_key in limits:
            rooms.append(Headroom("hubspot", budget, limits[left_key], limits[limit_key]))
    return tuple(rooms)


def start_web(
    http: HttpSettings,
    health: ServiceHealth,
    metrics: SyncMetrics,
    console: ConsoleMount | None = None,
) -> WebServer:
    """Serve /healthz, /readyz and /metrics (and the reviewer console when given); a host or
    port that cannot be bound is a ConfigError naming the variable."""
    app = create_app(
        health=health,
        registry=metrics.registry,
        blueprints=console.blueprints if console else (),
        secret_key=console.secret_key if console else None,
        config=console.config if console else None,
    )
    try:
        server = WebServer(app, host=http.host, port=http.port)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            ConfigProblem(
                Location("environment variable CRMBRIDGE_HTTP__PORT"),
                f"cannot serve on {http.host}:{http.port}: {exc}",
                hint="choose a free port (0: any free one), set CRMBRIDGE_HTTP__HOST to one "
                "IP address of this host, or CRMBRIDGE_HTTP__ENABLED=false",
            )
        ) from None
    server.start()
    log.info("http_serving", url=server.url, host=server.host, port=server.port)
    return server


@dataclass(frozen=True)
class Watchers:
    """What every pipeline of the process reports to: one metrics registry, one readiness."""

    metrics: SyncMetrics = field(default_factory=SyncMetrics)
    health: ServiceHealth = field(default_factory=ServiceHealth)
    #: Each daemon pipeline's hot reload; SIGHUP asks all of them to re-read their files.
    reloaders: list[ConfigReloader] = field(default_factory=list)

    def request_reload(self) -> None:
        """Re-read every pipeline's mapping files at its next page or pass (SIGHUP: sets
        flags only)."""
        for reloader in list(self.reloaders):
            reloader.request()


@dataclass(frozen=True)
class Watched:
    """One pipeline's observers: its metrics, its readiness, and both as one call observer."""

    name: str
    metrics: PipelineMetrics
    health: PipelineHealth

    @property
    def calls(self) -> CallObserver:
        return CallObservers(self.metrics, self.health)


def console_for(settings: Settings) -> ConsoleMount | None:
    """The reviewer console, when ``CRMBRIDGE_CONSOLE__ENABLED`` asks: served by the daemon's
    one web server, beside /metrics."""
    if not settings.console.enabled:
        return None
    if not settings.http.enabled:
        raise ConfigError(
            ConfigProblem(
                Location("environment variable CRMBRIDGE_CONSOLE__ENABLED"),
                "the console is served by `run`'s web server, which CRMBRIDGE_HTTP__ENABLED=false "
                "turns off",
                hint="enable the web server, or serve the console alone with `crmbridge console`",
            )
        )
    from crmbridge.console.serve import console_mount  # noqa: PLC0415 - Flask-WTF when asked

    return console_mount(settings)


def watch(
    watchers: Watchers,
    name: str,
    settings: Settings,
    store: Callable[[], StateStore | None],
) -> Watched:
    """Register pipeline ``name`` with ``watchers``; ``store`` gives its store once open."""

    def _ping() -> None:
        opened = store()
        if opened is None:
            raise RuntimeError("the state store is not open yet")
        opened.ping()

    health = watchers.health.add(
        PipelineHealth(name, poll_interval_s=settings.poll_interval_s, store_ping=_ping)
    )
    return Watched(name, watchers.metrics.pipeline(name), health)


def open_app(
    settings: Settings,
    *,
    watched: Watched,
    stop: threading.Event,
    keep_trying: bool,
    pipeline: str = DEFAULT_PIPELINE,
    keeper: LeaseKeeper | None = None,
) -> App | None:
    """``build_app`` reporting to ``watched``; with ``keep_trying`` (the daemon), retried while
    HubSpot or Salesforce cannot be reached (None: a stop was requested meanwhile); otherwise
    it raises at once."""
    failures = 0
    while True:
        try:
            return build_app(
                settings, stop=stop, observer=watched.calls, pipeline=pipeline, keeper=keeper
            )
        except RetryableApiError as exc:
            if not keep_trying or stop.is_set():
                raise
            failures += 1
            pause_s = min(settings.poll_interval_s, crash_backoff_s(failures))
            watched.health.starting(f"cannot start yet: {exc}")
            log.warning("start_blocked", error=str(exc), consecutive=failures, retry_in_s=pause_s)
            if stop.wait(pause_s):
                return None


@dataclass(frozen=True)
class Runnable:
    """A built pipeline ready for ``run_loop``: passes reported to the watchers, and (daemon)
    the wait between passes that also looks for edited files."""

    passes: RecordedPipeline
    wait: Callable[[float], bool] | None


def runnable(
    app: App,
    settings: Settings,
    *,
    watched: Watched,
    watchers: Watchers,
    stop: threading.Event,
    daemon: bool,
) -> Runnable:
    """Wire ``app`` for its loop: pass records to metrics, readiness and the store; in the
    daemon, hot reload of its mapping files (README "Changing the files of a running daemon")."""
    watched.health.starting(None)
    observers: list[PassObserver] = [watched.metrics, watched.health, StorePassLog(app.store)]
    wait = None
    if daemon:
        reloader = ConfigReloader(settings.mappings_dir, app.config, observer=watched.metrics)
        app.pipeline.config_updates = reloader
        watchers.reloaders.append(reloader)
        wait = waiting_with(app.pipeline.take_config_update, stop)
    passes = RecordedPipeline(
        app.pipeline, name=watched.name, observers=observers, headroom=lambda: headroom(app)
    )
    return Runnable(passes, wait)


def lease_check(state: LeaseState) -> LeaseCheck:
    """What readiness says of a pipeline's lease: holding it or standing by are both fine;
    only the holder is expected to run passes."""
    if state.status is LeaseStatus.HELD:
        return LeaseCheck(ok=True, detail=f"held (token {state.token})")
    holder = f": {state.holder} holds it" if state.holder else ""
    return LeaseCheck(ok=True, detail=f"{state.status.value}{holder}", active=False)
