"""Value parsers shared by the field map and the qualification rules.

HubSpot sends every property as a string and people type numbers their own way
(docs/traps.md#trap-4): ``"$75,000"``, ``"75000.50"``, ``"50k"``, ``"1.2m"``, but also ``"TBD"``,
``"ASAP"``,
``"Q3"``. Each parser returns the value, or a :class:`ParseFailure` carrying a sentence for the
reject log. Contract: a parser never raises, whatever the input (a failure is data, not an
exception), and never yields NaN or infinity.

Numbers become :class:`~decimal.Decimal` so ``75000.50`` keeps its cents and its written form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "ParseFailure",
    "format_number",
    "parse_boolean",
    "parse_integer",
    "parse_money",
    "parse_number",
    "quoted",
]

#: Longer input is not a number anyone typed; refusing it early keeps Decimal work bounded.
MAX_NUMBER_CHARS = 64
#: How much of a raw value a message quotes before eliding the rest.
QUOTE_MAX_CHARS = 80

_MULTIPLIERS = {"k": Decimal(1_000), "m": Decimal(1_000_000)}

# 1,234,567.89 (strict thousands groups) or 1234567.89 or .5, an optional k/m suffix. ASCII
# digits only: `\d` would also take other scripts' digits, which no one types into a budget.
_NUMBER = re.compile(
    r"(?P<sign>[+-])?(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?P<frac>\.[0-9]+)?"
    r"\s?(?P<suffix>[kKmM])?"
)
# The currency may be written around the number: "$75,000", "USD 75000", "75,000 USD", "-$500".
_MONEY = re.compile(
    r"(?P<sign>[+-])?\s*(?:US\$|\$|USD\s?)?\s*(?P<number>[^$]*?)\s*(?:USD)?",
    re.IGNORECASE,
)

_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


@dataclass(frozen=True)
class ParseFailure:
    """Why a raw value could not be read; ``message`` quotes it (``"TBD" is not a number``)."""

    raw: str
    message: str


def quoted(raw: str) -> str:
    """``raw`` in double quotes for a message, elided after :data:`QUOTE_MAX_CHARS` characters."""
    text = raw if len(raw) <= QUOTE_MAX_CHARS else raw[: QUOTE_MAX_CHARS - 1] + "…"
    return f'"{text}"'


def _empty(raw: str) -> ParseFailure:
    return ParseFailure(raw, "no value (the text is empty)")


def parse_number(raw: str) -> Decimal | ParseFailure:
    """A decimal number: ``"1,234.5"``, ``"-3"``, ``"50k"``, ``"1.2m"`` (k thousand, m million)."""
    text = raw.strip()
    if not text:
        return _empty(raw)
    value = _number(text)
    return value if value is not None else ParseFailure(raw, f"{quoted(text)} is not a number")


def parse_money(raw: str) -> Decimal | ParseFailure:
    """An amount as typed into a text field: a number with an optional ``$`` / ``USD`` around it."""
    text = raw.strip()
    if not text:
        return _empty(raw)
    failure = ParseFailure(raw, f"{quoted(text)} is not a number")
    match = _MONEY.fullmatch(text) if len(text) <= MAX_NUMBER_CHARS else None
    if match is None or not match["number"] or match["number"][0] in "+-":
        return failure
    value = _number(match["number"])
    if value is None:
        return failure
    return -value if match["sign"] == "-" else value


def parse_integer(raw: str) -> int | ParseFailure:
    """A whole number (``"90"``, ``"1,000"``, ``"90.0"``, ``"2k"``); ``"90.5"`` is refused."""
    text = raw.strip()
    if not text:
        return _empty(raw)
    value = _number(text)
    if value is None or value != value.to_integral_value():
        return ParseFailure(raw, f"{quoted(text)} is not a whole number")
    return int(value)


def parse_boolean(raw: str) -> bool | ParseFailure:
    """``true/false``, ``yes/no``, ``y/n``, ``1/0``, ``on/off`` in any case."""
    text = raw.strip()
    if not text:
        return _empty(raw)
    folded = text.casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    return ParseFailure(raw, f"{quoted(text)} is not true or false")


def _number(text: str) -> Decimal | None:
    if len(text) > MAX_NUMBER_CHARS:
        return None
    match = _NUMBER.fullmatch(text)
    if match is None or (match["int"] is None and match["frac"] is None):
        return None
    digits = (match["int"] or "0").replace(",", "") + (match["frac"] or "")
    try:
        value = Decimal(digits)
    except InvalidOperation:  # the regex admits only digits; kept so a parser can never raise
        return None
    if match["suffix"]:
        # normalize(): "1.2m" is 1200000, not 1200000.0 (which would print as written).
        value = (value * _MULTIPLIERS[match["suffix"].lower()]).normalize()
    return -value if match["sign"] == "-" else value


def format_number(value: Decimal | int | float) -> str:
    """A number as a reviewer reads it: ``30000``, ``75000.50``, ``1200000`` (no ``.0``, no E)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return str(number)
    text = format(number, "f")
    if "." in text and number == number.to_integral_value():
        text = text.split(".", 1)[0]
    return text
