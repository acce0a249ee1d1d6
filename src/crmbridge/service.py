"""``crmbridge run`` and ``sync`` as a service: the pipeline wired to its watchers.

For the daemon (``run``) this starts the one web stack (``crmbridge.web``) with /healthz,
/readyz and /metrics on ``CRMBRIDGE_HTTP__HOST``:``CRMBRIDGE_HTTP__PORT`` before anything
else, so a probe gets an answer (503 while starting) from the first second; then builds the
app, and runs the poll loop with every pass reported to the metrics, the readiness checks and
the state store (``crmbridge status`` reads them back). One pass (``sync --once``) records its
result in the store too, and serves nothing.

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
from crmbridge.daemon import (
    EXIT_OK,
    crash_backoff_s,
    install_reload_handler,
    run_loop,
    waiting_with,
)
from crmbridge.errors import ConfigError, ConfigProblem, CrmBridgeError, Location, RetryableApiError
from crmbridge.health import PipelineHealth, ServiceHealth
from crmbridge.metrics import SyncMetrics
from crmbridge.model import PassSummary
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


def run_sync(
    settings: Settings,
    *,
    stop: threading.Event,
    once: bool,
    dry_run: bool,
    on_pass: Callable[[PassSummary], None] | None = None,
) -> int:
    """Run passes as ``crmbridge run`` (``once`` false) or ``sync`` does; the exit code.

    Raises what ``build_app`` and ``run_loop`` raise for a person to act on (ConfigError,
    StateStoreError, refused credentials at start)."""
    watchers = Watchers()
    daemon = not (once or dry_run)
    if daemon:
        install_reload_handler(watchers.request_reload)
    console = _console(settings) if daemon else None
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
        return run_pipeline(
            settings,
            name=DEFAULT_PIPELINE,
            watchers=watchers,
            stop=stop,
            once=once,
            dry_run=dry_run,
            on_pass=on_pass,
        )
    finally:
        if web is not None:
            web.stop()
        if console is not None:
            console.close()


def _console(settings: Settings) -> ConsoleMount | None:
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


def run_pipeline(
    settings: Settings,
    *,
    name: str,
    watchers: Watchers,
    stop: threading.Event,
    once: bool,
    dry_run: bool,
    on_pass: Callable[[PassSummary], None] | None = None,
) -> int:
    """Run the passes of pipeline ``name`` (as configured by ``settings``), reporting to
    ``watchers`` under its name; the exit code. Several pipelines of one process share one
    ``Watchers`` (and the one web server serving it), each running this on its own thread."""
    daemon = not (once or dry_run)
    pipeline_metrics = watchers.metrics.pipeline(name)
    app: App | None = None

    def _ping() -> None:
        if app is None:
            raise RuntimeError("the state store is not open yet")
        app.store.ping()

    pipeline_health = watchers.health.add(
        PipelineHealth(name, poll_interval_s=settings.poll_interval_s, store_ping=_ping)
    )
    observer: CallObserver = CallObservers(pipeline_metrics, pipeline_health)
    app = _build(
        settings,
        stop=stop,
        dry_run=dry_run,
        observer=observer,
        health=pipeline_health,
        keep_trying=daemon,
    )
    if app is None:
        return EXIT_OK  # stopped while waiting for a system to answer
    try:
        pipeline_health.starting(None)
        observers: list[PassObserver] = [pipeline_metrics, pipeline_health]
        if not dry_run:
            observers.append(StorePassLog(app.store))
        built = app
        wait = None
        if daemon:
            # Hot reload: edited files apply between pages and passes (README "Changing the
            # files of a running daemon"); checked every few seconds while waiting.
            reloader = ConfigReloader(settings.mappings_dir, app.config, observer=pipeline_metrics)
            app.pipeline.config_updates = reloader
            watchers.reloaders.append(reloader)
            wait = waiting_with(app.pipeline.take_config_update, stop)
        recorded = RecordedPipeline(
            app.pipeline,
            name=name,
            observers=observers,
            headroom=lambda: headroom(built),
        )
        return run_loop(
            recorded,
            poll_interval_s=settings.poll_interval_s,
            stop=stop,
            once=not daemon,
            dry_run=dry_run,
            on_pass=on_pass,
            wait=wait,
        )
    finally:
        app.close()


def _build(
    settings: Settings,
    *,
    stop: threading.Event,
    dry_run: bool,
    observer: CallObserver,
    health: PipelineHealth,
    keep_trying: bool,
) -> App | None:
    """``build_app``; with ``keep_trying`` (the daemon), retried while HubSpot or Salesforce
    cannot be reached (None: a stop was requested meanwhile); otherwise it raises at once."""
    failures = 0
    while True:
        try:
            return build_app(settings, stop=stop, dry_run=dry_run, observer=observer)
        except RetryableApiError as exc:
            if not keep_trying or stop.is_set():
                raise
            failures += 1
            pause_s = min(settings.poll_interval_s, crash_backoff_s(failures))
            health.starting(f"cannot start yet: {exc}")
            log.warning("start_blocked", error=str(exc), consecutive=failures, retry_in_s=pause_s)
            if stop.wait(pause_s):
                return None
