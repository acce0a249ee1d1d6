"""structlog set-up: one JSON object per line for ops (default), readable lines for people."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def configure_logging(
    fmt: Literal["json", "console"] = "json", level: str = "INFO", *, stream: object = None
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr by default) in ``fmt``."""
    out = stream or sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging: keep their noise at WARNING and in the same stream.
    logging.basicConfig(stream=out, level=logging.WARNING, format="%(name)s %(message)s")  # type: ignore[arg-type]
