"""Text from outside, made safe to count, compare, send and store.

HubSpot hands over whatever people and integrations typed. Two kinds of character break
things further down, so the field map and the qualification rules read text through
:func:`clean_text` (the stored decision keeps the exact HubSpot value):

* A lone UTF-16 surrogate (U+D800 to U+DFFF without its partner). JavaScript cutting a string
  inside an emoji makes one, and valid JSON carries it (``"\\ud83d"``). Python keeps it in a
  ``str``, but it has no UTF-8 or UTF-16 form: encoding, counting, hashing or matching it with
  RE2 (which reads UTF-8) raises ``UnicodeEncodeError``. Each one becomes U+FFFD, the
  replacement character.
* C0 control characters other than tab, line feed and carriage return (NUL above all). XML 1.0
  cannot carry them (Salesforce's SOAP API and exports are XML) and PostgreSQL text refuses
  NUL; nobody types them on purpose. They are removed.
"""

from __future__ import annotations

import re

__all__ = ["REPLACEMENT", "clean_text", "replace_lone_surrogates", "utf16_length"]

#: What a lone surrogate becomes.
REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def replace_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD; a pair left as two code points
    (``"\\ud83d\\ude00"`` built by hand) is joined into its character. Never raises."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str) -> str:
    """``text`` as crmbridge reads and sends it: lone surrogates replaced by U+FFFD, C0 control
    characters except tab, line feed and carriage return removed. Never raises."""
    return _CONTROL.sub("", replace_lone_surrogates(text))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: a character outside the BMP counts twice, a lone surrogate
    once. Never raises."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
