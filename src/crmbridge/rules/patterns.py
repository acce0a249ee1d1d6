"""The ``matches`` operator's regular expressions, run by RE2 so a match takes linear time.

Python's ``re`` backtracks: ``(a+)+b`` on 45 characters held a pass for minutes. RE2 (the
``google-re2`` binding) never backtracks, whatever the pattern and the text, at the price of
backreferences (``\\1``) and lookaround (``(?=…)``, ``(?!…)``, ``(?<=…)``, ``(?<!…)``), which the
rule loader refuses at their line. Other differences an admin may meet: the end of the text is
``\\z`` (Python's ``\\Z``), and ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII (write ``\\pL`` for
any letter). RE2 reads UTF-8, so the text it is given must have a UTF-8 form (rules read
:func:`crmbridge.text.clean_text`'s output, which always has one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import re2

__all__ = ["PatternError", "compile_pattern", "refusal"]

#: A compiled ``matches`` test: True when the pattern occurs anywhere in the text.
Search = Callable[[str], bool]


class PatternError(ValueError):
    """RE2 cannot compile the pattern; ``unsupported`` when Python's ``re`` could (a feature
    RE2 lacks rather than a typo)."""

    def __init__(self, detail: str, *, unsupported: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.unsupported = unsupported


def _options(*, case_sensitive: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False  # RE2 would print to stderr; the loader reports the problem
    return options


def compile_pattern(pattern: str, *, case_sensitive: bool) -> Search:
    """``pattern`` compiled by RE2 as a search function; raises :class:`PatternError`."""
    try:
        regex = re2.compile(pattern, _options(case_sensitive=case_sensitive))
    except re2.error as exc:
        raise PatternError(_detail(exc), unsupported=_python_compiles(pattern)) from None
    except UnicodeEncodeError:
        raise PatternError(
            "it holds a broken character (a lone UTF-16 surrogate)", unsupported=False
        ) from None

    def search(text: str) -> bool:
        return regex.search(text) is not None

    return search


def refusal(pattern: str) -> PatternError | None:
    """Why RE2 refuses ``pattern``, or None when it compiles."""
    try:
        compile_pattern(pattern, case_sensitive=True)
    except PatternError as exc:
        return exc
    return None


def _detail(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _python_compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
