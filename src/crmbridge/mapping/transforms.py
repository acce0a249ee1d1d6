"""The named value transforms a field map may list, as a registry (name → :class:`Transform`).

A field's ``transforms: [trim, lower, email]`` runs left to right. Each transform declares what it
takes and gives (text, number, true/false) so the loader refuses a chain like ``[money, trim]``
with the file's line instead of failing per contact. Contract: ``apply`` never raises; bad input
comes back as a :class:`TransformFailure` with a reject code (``PARSE_ERROR``, ``INVALID_EMAIL``).

Truncation is not a transform: it needs the field's length from the Salesforce describe, so it
is the field option ``truncate: true`` and happens after value mapping (:func:`truncate_text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from crmbridge.parsing import (
    ParseFailure,
    parse_boolean,
    parse_integer,
    parse_money,
    parse_number,
    quoted,
)
from crmbridge.text import utf16_length

__all__ = [
    "TRANSFORMS",
    "Kind",
    "Transform",
    "TransformFailure",
    "TransformOptions",
    "Value",
    "salesforce_length",
    "truncate_text",
]

#: What flows through a transform chain.
Value = str | Decimal | int | bool

PARSE_ERROR = "PARSE_ERROR"
INVALID_EMAIL = "INVALID_EMAIL"


class Kind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "true/false"


@dataclass(frozen=True)
class TransformFailure:
    """A value a transform refused: ``code`` goes to the reject, ``message`` quotes the value."""

    code: str
    message: str


@dataclass(frozen=True)
class TransformOptions:
    """File-wide switches some transforms read (``fields.yaml`` top level)."""

    allow_international_email: bool = False


@dataclass(frozen=True)
class Transform:
    name: str
    takes: Kind
    gives: Kind
    apply: Callable[[Any, TransformOptions], Value | TransformFailure]
    #: True when a failure means "could not read the value": ``on_parse_error`` applies to it.
    parses: bool = False

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled by name (the registry's functions are lambdas): a map can go to a worker.
        return (_registered, (self.name,))


_WHITESPACE = re.compile(r"\s+")


def _collapse(value: str, _: TransformOptions) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def _parser(
    parse: Callable[[str], Decimal | int | bool | ParseFailure],
) -> Callable[[Any, TransformOptions], Value | TransformFailure]:
    def apply(value: str, _: TransformOptions) -> Value | TransformFailure:
        result = parse(value)
        if isinstance(result, ParseFailure):
            return TransformFailure(PARSE_ERROR, result.message)
        return result

    return apply


_NOT_DIGITS = re.compile(r"\D+")
# What people put in phone numbers besides digits: +, separators, and an extension marker.
_PHONE_JUNK = re.compile(r"[^0-9+()./\-\sxX]|(?<=.)\+")


def _digits(value: str, _: TransformOptions) -> str:
    return _NOT_DIGITS.sub("", value)


def _phone(value: str, _: TransformOptions) -> Value | TransformFailure:
    cleaned = _WHITESPACE.sub(" ", _PHONE_JUNK.sub("", value.strip())).strip()
    if not any(ch.isdigit() for ch in cleaned):
        return TransformFailure(PARSE_ERROR, f"{quoted(value.strip())} is not a phone number")
    return cleaned


# RFC 5322 "dot-atom" local part; what Salesforce accepts for an ASCII address.
_ASCII_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# The same shape for an internationalised local part: any letters, none of the specials.
_INTL_LOCAL = re.compile(r"[^\s.\"(),:;<>@\[\\\]]+(?:\.[^\s.\"(),:;<>@\[\\\]]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)
MAX_LOCAL_CHARS = 64
MAX_DOMAIN_CHARS = 253


def _email(value: str, options: TransformOptions) -> Value | TransformFailure:
    """Normalise (trim, drop ``mailto:`` and ``<>``, lower-case and IDNA-encode the domain) and
    validate; a non-ASCII local part needs ``allow_international_email`` (docs/traps.md#trap-12)."""
    text = _MAILTO.sub("", value.strip()).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if at and local and not local.isascii() and not options.allow_international_email:
        return TransformFailure(
            INVALID_EMAIL,
            f"{quoted(text)} has non-ASCII characters before the @, which Salesforce refuses "
            "unless the org enabled Email Address Internationalization",
        )
    ascii_domain = _email_domain(domain) if at and _email_local_ok(local) else None
    if ascii_domain is None:
        return TransformFailure(
            INVALID_EMAIL, f"{quoted(value.strip())} is not a valid e-mail address"
        )
    return f"{local}@{ascii_domain}"


def _email_local_ok(local: str) -> bool:
    if not local or len(local) > MAX_LOCAL_CHARS:
        return False
    pattern = _ASCII_LOCAL if local.isascii() else _INTL_LOCAL
    return pattern.fullmatch(local) is not None


def _email_domain(domain: str) -> str | None:
    """The domain lower-cased and in its ASCII (IDNA) form, or ``None`` when it is not one."""
    domain = domain.lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = domain.split(".")
    if (
        len(domain) > MAX_DOMAIN_CHARS
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return None
    return domain


def _text(name: str, fn: Callable[[str, TransformOptions], Value | TransformFailure]) -> Transform:
    return Transform(name, Kind.TEXT, Kind.TEXT, fn)


def _number(name: str, parse: Callable[[str], Decimal | int | ParseFailure]) -> Transform:
    return Transform(name, Kind.TEXT, Kind.NUMBER, _parser(parse), parses=True)


#: Every transform a field map may name, by name.
TRANSFORMS: Mapping[str, Transform] = {
    t.name: t
    for t in (
        _text("trim", lambda v, _: v.strip()),
        _text("lower", lambda v, _: v.lower()),
        _text("upper", lambda v, _: v.upper()),
        _text("title", lambda v, _: v.title()),
        _text("collapse_whitespace", _collapse),
        _text("digits", _digits),
        Transform("phone", Kind.TEXT, Kind.TEXT, _phone, parses=True),
        Transform("email", Kind.TEXT, Kind.TEXT, _email),
        _number("money", parse_money),
        _number("number", parse_number),
        _number("integer", parse_integer),
        Transform("boolean", Kind.TEXT, Kind.BOOLEAN, _parser(parse_boolean), parses=True),
    )
}


def _registered(name: str) -> Transform:
    return TRANSFORMS[name]


def salesforce_length(value: str) -> int:
    """The length Salesforce checks ``value`` against, in UTF-16 code units.

    Salesforce documents lengths in characters; whether a character outside the BMP (an emoji)
    counts once or twice is unverified, so count it twice: the safe side, never STRING_TOO_LONG.
    A lone surrogate counts once (mapped text has none left: see :mod:`crmbridge.text`).
    """
    return utf16_length(value)


def truncate_text(value: str, length: int) -> str:
    """``value`` cut to ``length`` (as :func:`salesforce_length` counts), never mid-character."""
    if salesforce_length(value) <= length:
        return value
    kept: list[str] = []
    used = 0
    for ch in value:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > length:
            break
        kept.append(ch)
    return "".join(kept)
