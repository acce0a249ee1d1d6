"""A small threaded HTTP(S) server the simulators share: routing is theirs, plumbing is here.

It binds to 127.0.0.1 only, on a free port unless one is given, serves each request on its own
thread, and offers two test aids every simulator needs: a log of calls (exact API-call counts are
asserted in tests) and a queue of injected faults, among them ``HANG``: a request read and never
answered until the server stops (what a stuck upstream behind a proxy looks like).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Response:
    status: int
    body: Any = None  # bytes/str are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"
    #: Never answer: hold the request until the server stops (a hung upstream).
    hang: bool = False

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


#: What an injected hang answers with: nothing, ever (until the server stops).
HANG = Response(0, hang=True)


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path_pattern``."""

    method: str
    path_pattern: str
    response: Response
    times: int = 1

    def matches(self, request: Request) -> bool:
        return (self.method in ("*", request.method)) and bool(
            re.search(self.path_pattern, request.path)
        )


@dataclass
class FaultRate:
    """Answer each request matching ``method`` and ``path_pattern`` with ``response`` with
    probability ``fraction`` (drawn from a seeded generator: the same run, the same faults)."""

    method: str
    path_pattern: str
    response: Response
    fraction: float
    rng: random.Random

    def matches(self, request: Request) -> bool:
        return Fault(self.method, self.path_pattern, self.response).matches(request)


class FaultPlan:
    """Thread-safe queue of injected faults; the first matching fault with turns left answers,
    then, for a request none of those took, each fault rate draws in turn."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._rates: list[FaultRate] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def add_rate(self, rate: FaultRate) -> None:
        with self._lock:
            self._rates.append(rate)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rates.clear()

    def take(self, request: Request) -> Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(request):
                    fault.times -= 1
                    return fault.response
            for rate in self._rates:
                if rate.matches(request) and rate.rng.random() < rate.fraction:
                    return rate.response
        return None


class CallLog:
    """Counts requests by ``"METHOD route"`` (the route label is the simulator's choice)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, label: str) -> None:
        with self._lock:
            self._counts[label] += 1

    def count(self, label: str | None = None) -> int:
        with self._lock:
            if label is None:
                return sum(self._counts.values())
            return self._counts[label]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


Handler = Callable[[Request], Response]


class Served:
    """``with`` support for anything that has ``start()`` and ``stop()``."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimulatorServer:
    """Serve ``handler`` on loopback in a daemon thread; ``start()`` returns the base URL.

    Once started, the server keeps its port: ``stop()`` then ``start()`` serves on the same
    one again, as a system back from an outage does."""

    def __init__(
        self, handler: Handler, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._handler = handler
        self._ssl_context = ssl_context
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._released = threading.Event()  # ends every hanging request
        # Open client connections: a stop closes them too, or keep-alive clients would
        # still be served by their connection's thread after the server "went away".
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{LOOPBACK}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        handler = self._handler
        released = self._released
        released.clear()
        connections, connections_lock = self._connections, self._connections_lock

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Small responses otherwise wait ~40 ms for the client's delayed ACK (Nagle).
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with connections_lock:
                    connections.add(self.connection)

            def finish(self) -> None:
                with connections_lock:
                    connections.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers=dict(self.headers.items()),
                    body=body,
                )
                try:
                    response = handler(request)
                except Exception as exc:
                    response = Response(500, {"message": f"simulator error: {exc!r}"})
                if response.hang:
                    released.wait()
                    self.close_connection = True
                    return
                payload = response.encoded()
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if payload and self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server names

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default stderr access log."""

        httpd = ThreadingHTTPServer((LOOPBACK, self._port), _RequestHandler)
        # A restart (stop, then start) serves on the same port: an outage and its end.
        self._port = int(httpd.server_address[1])
        httpd.daemon_threads = True
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="simulator",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._connections_lock:
            open_connections = list(self._connections)
            self._connections.clear()
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
