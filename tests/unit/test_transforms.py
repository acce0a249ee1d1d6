"""Unit tests for the named transforms a field map can list, and for truncation."""

from decimal import Decimal

import pytest

from crmbridge.mapping.transforms import (
    TRANSFORMS,
    Kind,
    TransformFailure,
    TransformOptions,
    salesforce_length,
    truncate_text,
)

STRICT = TransformOptions()
INTERNATIONAL = TransformOptions(allow_international_email=True)


def run(name: str, value: object, options: TransformOptions = STRICT) -> object:
    return TRANSFORMS[name].apply(value, options)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("trim", "  Acme  ", "Acme"),
        ("lower", "ACME Corp", "acme corp"),
        ("upper", "acme", "ACME"),
        ("title", "jane DOE", "Jane Doe"),
        ("collapse_whitespace", " Acme \n  Industries\tInc ", "Acme Industries Inc"),
        ("digits", "+1 (555) 010-9999", "15550109999"),
    ],
)
def test_text_transforms(name: str, raw: str, expected: str) -> None:
    """Each text transform turns text into the expected text."""
    assert run(name, raw) == expected


def test_phone_keeps_separators_and_drops_junk() -> None:
    """phone keeps digits, a leading + and separators, and drops letters and stray symbols."""
    assert run("phone", " +1 (555) 010-9999 ext. 12 #") == "+1 (555) 010-9999 x. 12"


def test_phone_without_digits_is_a_parse_error() -> None:
    """A phone value without any digit is a parse failure quoting it."""
    assert run("phone", "n/a") == TransformFailure("PARSE_ERROR", '"n/a" is not a phone number')


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Jane.Doe@Example.COM ", "Jane.Doe@example.com"),
        ("mailto:jane@example.com", "jane@example.com"),
        ("<jane@example.com>", "jane@example.com"),
        ("o'brien+crm@mail.example.co.uk", "o'brien+crm@mail.example.co.uk"),
        ("jane@münchen.de", "jane@xn--mnchen-3ya.de"),
    ],
)
def test_email_normalises_valid_addresses(raw: str, expected: str) -> None:
    """email trims, unwraps, lower-cases the domain and IDNA-encodes it, keeping the local part."""
    assert run("email", raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "jane",
        "jane@",
        "@example.com",
        "jane@@example.com",
        "ja..ne@example.com",
        ".jane@example.com",
        "jane@example",
        "jane@-example.com",
        "jane doe@example.com",
        "jane@example.123",
        "jane@exa_mple.com",
        "x" * 65 + "@example.com",
    ],
)
def test_email_refuses_malformed_addresses(raw: str) -> None:
    """A malformed address is an INVALID_EMAIL failure quoting it."""
    assert run("email", raw) == TransformFailure(
        "INVALID_EMAIL", f'"{raw}" is not a valid e-mail address'
    )


def test_email_refuses_non_ascii_local_part_by_default() -> None:
    """A non-ASCII local part is refused with the reason Salesforce would refuse it."""
    result = run("email", "jörg@example.de")
    assert isinstance(result, TransformFailure)
    assert result.code == "INVALID_EMAIL"
    assert result.message == (
        '"jörg@example.de" has non-ASCII characters before the @, which Salesforce refuses '
        "unless the org enabled Email Address Internationalization"
    )


def test_email_allows_non_ascii_local_part_when_enabled() -> None:
    """With allow_international_email a non-ASCII local part passes."""
    assert run("email", "jörg@Example.de", INTERNATIONAL) == "jörg@example.de"


def test_email_with_international_option_still_refuses_malformed() -> None:
    """The option does not relax the syntax check."""
    assert isinstance(run("email", "jö rg@example.de", INTERNATIONAL), TransformFailure)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("money", "$75,000", Decimal(75000)),
        ("number", "1.5k", Decimal(1500)),
        ("integer", "90", 90),
        ("boolean", "yes", True),
    ],
)
def test_parsing_transforms_return_values(name: str, raw: str, expected: object) -> None:
    """The parsing transforms return numbers and booleans."""
    assert run(name, raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("money", "TBD", '"TBD" is not a number'),
        ("number", "Q3", '"Q3" is not a number'),
        ("integer", "ASAP", '"ASAP" is not a whole number'),
        ("boolean", "maybe", '"maybe" is not true or false'),
    ],
)
def test_parsing_transforms_fail_with_parse_error(name: str, raw: str, message: str) -> None:
    """A value the parser cannot read is a PARSE_ERROR failure quoting the raw value."""
    assert run(name, raw) == TransformFailure("PARSE_ERROR", message)


def test_registry_declares_kinds_for_chain_checks() -> None:
    """Every transform takes text; parsers give numbers or booleans, the rest give text."""
    assert all(t.takes is Kind.TEXT for t in TRANSFORMS.values())
    assert {n for n, t in TRANSFORMS.items() if t.gives is Kind.NUMBER} == {
        "money",
        "number",
        "integer",
    }
    assert TRANSFORMS["boolean"].gives is Kind.BOOLEAN


def test_truncate_cuts_to_the_length() -> None:
    """Text longer than the field is cut to exactly its length."""
    assert truncate_text("a" * 300, 255) == "a" * 255


def test_truncate_leaves_short_text_alone() -> None:
    """Text within the length is returned unchanged."""
    assert truncate_text("Acme", 255) == "Acme"


def test_truncate_counts_accented_letters_as_one() -> None:
    """Accented letters count as one character, as in Salesforce."""
    assert truncate_text("é" * 10, 4) == "éééé"


def test_truncate_never_splits_an_emoji() -> None:
    """An emoji counts as two (the safe side) and is never cut in half."""
    assert salesforce_length("ab😀") == 4
    assert truncate_text("ab😀", 3) == "ab"


#: Long inputs shaped to make a backtracking regex or a quadratic loop show itself.
HUGE = [
    " " * 200_000 + "x",
    "+" * 200_000,
    "a." * 100_000 + "@",
    "a" * 200_000 + "@" + "b." * 100_000,
    "mailto:" * 30_000,
    "1," * 100_000 + "x",
    "é" * 200_000 + "@ü" + "ü." * 50_000,
    "x\t" * 100_000 + "\ud83d",
]


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_answers_on_huge_adversarial_text(name: str) -> None:
    """No transform backtracks or loops for long on huge text: each returns a value or a failure."""
    for value in HUGE:
        result = run(name, value)
        assert isinstance(result, str | Decimal | int | bool | TransformFailure)
