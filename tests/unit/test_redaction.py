"""Registered secrets are masked in messages, log lines and tracebacks."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from crmbridge import logs
from crmbridge.redaction import MASK, redact, register_secret

SECRET = "pat-na1-UNITSECRET-42ab"


def test_registered_secret_is_masked_wherever_it_appears() -> None:
    """Every occurrence of a registered value becomes the mask."""
    register_secret(SECRET)
    text = f"Invalid header value b'Bearer {SECRET}\\r' ({SECRET})"
    assert redact(text) == f"Invalid header value b'Bearer {MASK}\\r' ({MASK})"


def test_a_secret_holding_another_is_masked_whole() -> None:
    """When one secret contains another, the longer one is masked first, leaving no piece."""
    register_secret("ABCDEFGH-inner")
    register_secret("outer-ABCDEFGH-inner-outer")
    assert redact("x outer-ABCDEFGH-inner-outer y") == f"x {MASK} y"


def test_short_values_are_never_registered() -> None:
    """A value too short to be a secret would mask ordinary words, so it is ignored."""
    register_secret("abc")
    register_secret(None)
    assert redact("abc and None") == "abc and None"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_lines_and_their_tracebacks_are_masked(fmt: str) -> None:
    """A log event and the traceback it carries never show a registered secret."""
    register_secret(SECRET)
    out = io.StringIO()
    logs.configure_logging(fmt, "INFO", stream=out)  # type: ignore[arg-type]
    log = structlog.get_logger("test")
    try:
        raise ValueError(f"Invalid header value 'Bearer {SECRET}'")
    except ValueError:
        log.exception("pass_crashed", error=f"token {SECRET}", nested={"k": [SECRET]})
    text = out.getvalue()
    assert "pass_crashed" in text
    assert "Traceback" in text
    assert SECRET not in text
    assert MASK in text


def test_uncaught_exception_report_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """Python's report of an uncaught exception goes through the mask too."""
    register_secret(SECRET)
    logs.configure_logging("json", "INFO", stream=io.StringIO())  # type: ignore[arg-type]
    try:
        raise RuntimeError(f"crash with {SECRET}")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert "RuntimeError: crash with **********" in err
    assert SECRET not in err


def test_console_lines_show_control_characters_escaped() -> None:
    """A remote message with escape sequences is logged escaped, one event per line."""
    out = io.StringIO()
    logs.configure_logging("console", "INFO", stream=out)  # type: ignore[arg-type]
    structlog.get_logger("test").warning(
        "retrying",
        error="Salesforce: \x1b[2J\x1b]0;owned\x07 bad\nvalue",
        codes=["\x9b31m"],
        bare="x\x1b[31my\u202e",
    )
    text = out.getvalue()
    assert "\\x1b[2J\\x1b]0;owned\\x07 bad\\nvalue" in text
    assert "\\x9b31m" in text
    assert "bare=x\\x1b[31my\\u202e" in text
    assert text.count("\n") == 1
    assert "\x1b" not in text
