"""Serving the application with waitress on a background thread of the running process."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from waitress.server import BaseWSGIServer, create_server

#: Worker threads answering requests; the console and a Prometheus scrape need few.
DEFAULT_THREADS = 4


class WebServer:
    """``app`` on ``host:port`` (port 0: a free one, read back from ``port``)."""

    def __init__(
        self, app: Flask, *, host: str = "127.0.0.1", port: int = 0, threads: int = DEFAULT_THREADS
    ) -> None:
        server: Any = create_server(app, host=host, port=port, threads=threads, ident="crmbridge")
        if not isinstance(server, BaseWSGIServer):  # several sockets: one host, one port only
            server.close()
            # A name resolving to several addresses (localhost: ::1 and 127.0.0.1).
            raise ValueError(f"{host!r} resolves to several addresses; give one IP address")  # noqa: TRY004
        self._server = server
        self._thread: threading.Thread | None = None
        self.host = host
        self.port: int = int(server.effective_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> WebServer:
        """Serve on a daemon thread (the process's own stop logic decides when it ends)."""
        self._thread = threading.Thread(target=self._server.run, name="crmbridge-web", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until ``stop`` is called from another one."""
        self._server.run()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the listening socket and every connection, then end the worker threads."""
        server = self._server
        logging.getLogger("waitress").setLevel(logging.CRITICAL)  # asyncore noise on close
        while server._map:
            for channel in list(server._map.values()):
                channel.handle_close()
        server.task_dispatcher.shutdown()
        if self._thread is not None:
            self._thread.join(timeout_s)
