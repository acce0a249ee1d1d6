"""structlog set-up: one JSON object per line for ops (default), readable lines for people.

Every line, and the traceback of an exception that nothing caught, passes through
``redaction.redact`` first: a registered secret never reaches a log. Console lines also show
control characters escaped (``text.visible``): a value from HubSpot or Salesforce must not
act on the terminal; JSON lines are escaped by the encoder.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, Literal

import structlog

from crmbridge.redaction import redact
from crmbridge.text import visible


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def redact_event(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: mask registered secrets in every value (tracebacks included)."""
    del logger, method
    return {key: _redacted(value) for key, value in event_dict.items()}


def _terminal_safe(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    """``renderer`` (console lines) with control characters escaped in what it wrote. Its line
    breaks are its own (a traceback's): it quotes any value that holds one."""

    def _render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        text = str(renderer(logger, method, event_dict))
        return "\n".join(visible(line) for line in text.split("\n"))

    return _render


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _print_uncaught(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """Python's report of an uncaught exception, with registered secrets masked."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))


def configure_logging(
    fmt: Literal["json", "console"] = "json", level: str = "INFO", *, stream: object = None
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr by default) in ``fmt``."""
    out = stream or sys.stderr
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_event,
    ]
    if fmt == "json":
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(_terminal_safe(structlog.dev.ConsoleRenderer(colors=False)))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging: keep their noise at WARNING and in the same stream.
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    handler.setFormatter(_RedactingFormatter("%(name)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    sys.excepthook = _print_uncaught
