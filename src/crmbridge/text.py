"""Text from outside (HubSpot, Salesforce, an admin's file, a setting): cleaned for sending,
escaped for showing.

HubSpot hands over whatever people and integrations typed, and Salesforce's messages quote it
back. The same few characters cause trouble on both ways out, but each way needs its own cure:

==========================  ======================  ==========  ===========  ===============
function                    for                     lone        C0 control   tab, LF, CR;
                                                    surrogate   (NUL, ESC)   DEL, C1, bidi
==========================  ======================  ==========  ===========  ===============
:func:`clean_text`          what the rules read     U+FFFD      removed      kept
                            and what is sent
:func:`visible`             what a person reads     escaped     escaped      escaped
==========================  ======================  ==========  ===========  ===============

The stored decision and every JSON output keep the exact value (the JSON encoder escapes these
characters itself); only these two views change it.

Sending (:func:`clean_text`), the field map and the qualification rules read text through it:

* A lone UTF-16 surrogate (U+D800 to U+DFFF without its partner). JavaScript cutting a string
  inside an emoji makes one, and valid JSON carries it (``"\\ud83d"``). Python keeps it in a
  ``str``, but it has no UTF-8 or UTF-16 form: encoding, counting, hashing or matching it with
  RE2 (which reads UTF-8) raises ``UnicodeEncodeError``. Each one becomes U+FFFD, the
  replacement character.
* C0 control characters other than tab, line feed and carriage return (NUL above all). XML 1.0
  cannot carry them (Salesforce's SOAP API and exports are XML) and PostgreSQL text refuses
  NUL; nobody types them on purpose. They are removed. A textarea's tabs and line breaks, and
  the rest of Unicode, are data and stay.

Showing (:func:`visible`), every text output that can carry outside text goes through it
(tables, details, summaries, errors, console logs). A value such as
``"\\x1b[2J\\x1b]0;owned\\x07"`` would clear a reviewer's screen and retitle the window;
``\\n``, ``\\r``, ``\\t`` and backspace break a table's rows; a bidi override reorders everything
printed after it; a lone surrogate cannot even be encoded for output. Each such character is
written as a Python escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\ud83d``) rather than dropped, so
a reviewer sees that it is there, and every other character is left as it is.
"""

from __future__ import annotations

import re

__all__ = [
    "REPLACEMENT",
    "clean_text",
    "has_unsafe_characters",
    "replace_lone_surrogates",
    "utf16_length",
    "visible",
]

#: What a lone surrogate becomes in clean text.
REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")
#: What clean text drops: C0 controls except tab, line feed and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: What shown text escapes: characters that act on a terminal or the layout instead of showing.
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


# -- sending --------------------------------------------------------------------------------
def replace_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD; a pair left as two code points
    (``"\\ud83d\\ude00"`` built by hand) is joined into its character. Never raises."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str) -> str:
    """``text`` as crmbridge reads and sends it: lone surrogates replaced by U+FFFD, C0 control
    characters except tab, line feed and carriage return removed. Never raises."""
    if text.isascii() and text.isprintable():
        return text  # the common case, decided in C: nothing to replace or remove
    return _CONTROL.sub("", replace_lone_surrogates(text))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: a character outside the BMP counts twice, a lone surrogate
    once. Never raises."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# -- showing --------------------------------------------------------------------------------
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
