"""Serving the console: `crmbridge console` in the foreground, or beside `crmbridge run` when
``CRMBRIDGE_CONSOLE__ENABLED`` is true."""

from __future__ import annotations

import structlog

from crmbridge.console import console_app, console_blueprint
from crmbridge.ports import StateStore
from crmbridge.settings import Settings
from crmbridge.state import open_store
from crmbridge.web.server import WebServer

__all__ = ["ConsoleMount", "RunningConsole", "console_mount", "start_console"]

log = structlog.get_logger(__name__)


class RunningConsole:
    """The console served on a thread, with the store it opened; ``close`` ends both."""

    def __init__(self, server: WebServer, store: StateStore) -> None:
        self.server = server
        self._store = store

    @property
    def url(self) -> str:
        return self.server.url + "/console/"

    def close(self) -> None:
        self.server.stop()
        self._store.close()


def start_console(settings: Settings) -> RunningConsole:
    """Open the state store (the console writes reviewers' changes) and serve the console on
    ``settings.console.host:port`` on a daemon thread. Raises like ``open_store``."""
    store = open_store(settings.state_url, pipeline=settings.console.pipeline)
    app = console_app(store, settings.console)
    server = WebServer(app, host=settings.console.host, port=settings.console.port).start()
    if not settings.console.secure_cookies:
        log.warning(
            "console_cookies_not_secure",
            hint="CRMBRIDGE_CONSOLE__SECURE_COOKIES=false: only for plain http on loopback",
        )
    log.info("console_serving", url=server.url + "/console/")
    return RunningConsole(server, store)


class ConsoleMount:
    """The console as a blueprint for the daemon's web server (``crmbridge run`` with
    ``CRMBRIDGE_CONSOLE__ENABLED``), with the app settings it needs and the store it opened."""

    def __init__(self, settings: Settings) -> None:
        console = settings.console
        self._store = open_store(settings.state_url, pipeline=console.pipeline)
        self.blueprints = [console_blueprint(self._store, session_hours=console.session_hours)]
        self.secret_key = console.secret_key.get_secret_value() if console.secret_key else None
        self.config: dict[str, object] = {
            "SESSION_COOKIE_SECURE": console.secure_cookies,
            "SESSION_COOKIE_NAME": "crmbridge_console",
        }

    def close(self) -> None:
        self._store.close()


def console_mount(settings: Settings) -> ConsoleMount:
    """The console to mount beside /healthz, /readyz and /metrics. Raises like
    ``open_store``."""
    return ConsoleMount(settings)
