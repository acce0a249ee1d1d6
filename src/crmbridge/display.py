"""Text from HubSpot, Salesforce or an admin's file, made safe to show a person.

A HubSpot value such as ``"\\x1b[2J\\x1b]0;owned\\x07"`` would clear a reviewer's screen and
retitle the window; ``\\n``, ``\\r``, ``\\t`` and backspace break a table's rows; a bidi override
reorders everything printed after it; a lone surrogate (a string cut inside an emoji) cannot even
be encoded for output. :func:`visible` writes each such character as a Python escape (``\\x1b``,
``\\n``, ``\\u202e``, ``\\ud83d``) and leaves every other character as it is, so the text stays
readable and nothing in it acts on the terminal.

Every text output that can carry outside text goes through it (tables, details, summaries,
errors). JSON output does not: the JSON encoder escapes these characters itself and keeps the
value exact.
"""

from __future__ import annotations

import re

#: Characters that act on a terminal or on the layout instead of showing as themselves.
_UNSAFE = re.compile(
    r"["
    r"\x00-\x1f\x7f"  # C0 controls and DEL
    r"\x80-\x9f"  # C1 controls, among them \x9b, the one-byte CSI
    r"\u061c\u200e\u200f"  # bidi marks
    r"\u202a-\u202e"  # bidi embeddings and overrides
    r"\u2066-\u2069"  # bidi isolates
    r"\u2028\u2029"  # line and paragraph separators
    r"\ud800-\udfff"  # surrogates: only ever lone ones in a str, and unencodable
    r"]"
)
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control, bidi-control and lone-surrogate character escaped."""
    return _UNSAFE.sub(_escape, text)


def has_unsafe_characters(text: str) -> bool:
    """True when :func:`visible` would change ``text`` (it holds a control character)."""
    return _UNSAFE.search(text) is not None
