"""Unit tests for the shared value parsers (money, numbers, integers, booleans, formatting)."""

from decimal import Decimal

import pytest

from crmbridge.parsing import (
    ParseFailure,
    format_number,
    parse_boolean,
    parse_integer,
    parse_money,
    parse_number,
    quoted,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("60000", Decimal(60000)),
        ("75000.50", Decimal("75000.50")),
        ("$75,000", Decimal(75000)),
        ("50k", Decimal(50000)),
        ("50K", Decimal(50000)),
        ("1.2m", Decimal(1200000)),
        ("$1.5M", Decimal(1500000)),
        ("USD 1,000", Decimal(1000)),
        ("75,000 USD", Decimal(75000)),
        ("-$500", Decimal(-500)),
        ("  60000  ", Decimal(60000)),
        ("1,234,567.89", Decimal("1234567.89")),
    ],
)
def test_money_reads_what_people_type(raw: str, expected: Decimal) -> None:
    """Money accepts plain numbers, $ and USD, thousands separators and k/m suffixes."""
    assert parse_money(raw) == expected


def test_money_keeps_the_written_cents() -> None:
    """A parsed amount keeps its written precision, so 75000.50 still reads 75000.50."""
    value = parse_money("75000.50")
    assert isinstance(value, Decimal)
    assert str(value) == "75000.50"


@pytest.mark.parametrize(
    "raw", ["TBD", "ASAP", "Q3", "n/a", "1,23", "NaN", "Infinity", "1e5", "€5000", "$$5", "5-10k"]
)
def test_money_refuses_words_and_odd_formats(raw: str) -> None:
    """Anything that is not clearly one amount is a failure quoting the raw value."""
    result = parse_money(raw)
    assert result == ParseFailure(raw, f'"{raw}" is not a number')


def test_money_failure_message_for_tbd() -> None:
    """The TBD message is exactly the sentence a reviewer reads."""
    result = parse_money("TBD")
    assert isinstance(result, ParseFailure)
    assert result.message == '"TBD" is not a number'


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_text_is_a_failure_not_zero(raw: str) -> None:
    """An empty value is refused with a clear message rather than read as 0."""
    for parse in (parse_money, parse_number, parse_integer, parse_boolean):
        result = parse(raw)
        assert isinstance(result, ParseFailure)
        assert result.message == "no value (the text is empty)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("-3.5", Decimal("-3.5")), (".5", Decimal("0.5")), ("2k", Decimal(2000)), ("+7", Decimal(7))],
)
def test_number_reads_signs_fractions_and_suffixes(raw: str, expected: Decimal) -> None:
    """number handles signs, leading-dot fractions and k/m suffixes."""
    assert parse_number(raw) == expected


def test_number_refuses_currency_symbols() -> None:
    """number is for plain numbers: a $ belongs to money."""
    assert parse_number("$5") == ParseFailure("$5", '"$5" is not a number')


def test_number_refuses_non_ascii_digits() -> None:
    """Digits of other scripts are refused rather than silently converted."""
    fullwidth_123 = "\uff11\uff12\uff13"
    assert isinstance(parse_number(fullwidth_123), ParseFailure)


@pytest.mark.parametrize(
    ("raw", "expected"), [("90", 90), ("1,000", 1000), ("90.0", 90), ("2k", 2000), (" 7 ", 7)]
)
def test_integer_reads_whole_numbers(raw: str, expected: int) -> None:
    """integer accepts whole numbers in their usual spellings and returns an int."""
    result = parse_integer(raw)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("raw", ["ASAP", "Q3", "90.5", "ninety"])
def test_integer_refuses_words_and_fractions(raw: str) -> None:
    """A fraction is refused, not rounded, and words are refused with the raw value quoted."""
    assert parse_integer(raw) == ParseFailure(raw, f'"{raw}" is not a whole number')


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("FALSE", False), ("no", False)],
)
def test_boolean_reads_common_spellings(raw: str, expected: bool) -> None:
    """boolean accepts true/false, yes/no and 1/0 in any case."""
    assert parse_boolean(raw) is expected


def test_boolean_refuses_other_words() -> None:
    """An unrecognised word is a failure quoting it."""
    assert parse_boolean("maybe") == ParseFailure("maybe", '"maybe" is not true or false')


@pytest.mark.parametrize(
    "raw",
    ["\x00", "9" * 500, "$", "k", "-", ".", "1..2", "\u0661\u0662\u0663", "💰", "1,000,00", "USD"],
)
def test_parsers_never_raise(raw: str) -> None:
    """Garbage input yields a failure value from every parser, never an exception."""
    for parse in (parse_money, parse_number, parse_integer, parse_boolean):
        assert isinstance(parse(raw), ParseFailure)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal(30000), "30000"),
        (Decimal("75000.50"), "75000.50"),
        (Decimal("30000.00"), "30000"),
        (Decimal("1.2E+6"), "1200000"),
        (50000.0, "50000"),
        (1.5, "1.5"),
        (180, "180"),
    ],
)
def test_format_number_reads_like_a_person_wrote_it(value: Decimal | float, expected: str) -> None:
    """Numbers print without a trailing .0 or exponent, keeping written cents."""
    assert format_number(value) == expected


def test_quoted_elides_long_values() -> None:
    """A long raw value is cut in messages so a reject line stays readable."""
    text = quoted("x" * 200)
    assert len(text) == 82
    assert text.endswith('…"')
