"""Outside text, both ways out: cleaned for sending (``clean_text``; more in
test_hostile_text.py) and escaped for showing (``visible``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmbridge.text import clean_text, has_unsafe_characters, visible

HOSTILE = "\x1b[2J\x1b[H\x1b[31mPWNED\x1b[0m\x1b]0;owned\x07"


def test_escape_sequences_are_shown_not_obeyed() -> None:
    """Screen-clearing, colour and window-title sequences come out as visible escapes."""
    assert visible(HOSTILE) == "\\x1b[2J\\x1b[H\\x1b[31mPWNED\\x1b[0m\\x1b]0;owned\\x07"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("a\tb", "a\\tb"),
        ("a\bb", "a\\x08b"),
        ("a\x00b", "a\\x00b"),
        ("a\x7fb", "a\\x7fb"),
        ("a\x9b31mb", "a\\x9b31mb"),
        ("a\x85b", "a\\x85b"),
        ("a\u202eb", "a\\u202eb"),
        ("a\u202ab", "a\\u202ab"),
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),
        ("a\u2028b", "a\\u2028b"),
        ("Head of \ud83d", "Head of \\ud83d"),
    ],
)
def test_each_kind_of_control_is_escaped(raw: str, shown: str) -> None:
    """C0, DEL, C1 (with the one-byte CSI), bidi controls, separators and lone surrogates."""
    assert visible(raw) == shown
    assert has_unsafe_characters(raw)


def test_ordinary_text_is_left_alone() -> None:
    """Accents, CJK, emoji and backslashes print as they are."""
    text = 'José Müller 山田 🚀 C:\\temp "quoted" 50%'
    assert visible(text) == text
    assert not has_unsafe_characters(text)


@given(st.text())
def test_output_is_always_printable_and_encodable(text: str) -> None:
    """Whatever the input, the result holds no control character and encodes as UTF-8."""
    shown = visible(text)
    shown.encode("utf-8")
    assert not has_unsafe_characters(shown)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in shown)


@pytest.mark.parametrize(
    ("char", "cleaned", "shown"),
    [
        ("\ud83d", "\ufffd", "\\ud83d"),
        ("\x00", "", "\\x00"),
        ("\x1b", "", "\\x1b"),
        ("\t", "\t", "\\t"),
        ("\n", "\n", "\\n"),
        ("\r", "\r", "\\r"),
        ("\x7f", "\x7f", "\\x7f"),
        ("\x9b", "\x9b", "\\x9b"),
        ("\u202e", "\u202e", "\\u202e"),
        ("é", "é", "é"),
    ],
)
def test_each_way_out_treats_a_character_as_the_module_table_says(
    char: str, cleaned: str, shown: str
) -> None:
    """Sending replaces a lone surrogate and drops C0 controls but keeps tab, line breaks, DEL,
    C1 and bidi controls; showing escapes every one of them."""
    assert clean_text(f"a{char}b") == f"a{cleaned}b"
    assert visible(f"a{char}b") == f"a{shown}b"


@given(st.text(st.characters(exclude_categories=())))
def test_clean_text_is_still_shown_escaped(text: str) -> None:
    """Text cleaned for sending may still hold characters a terminal obeys: shown, it is safe."""
    shown = visible(clean_text(text))
    shown.encode("utf-8")
    assert not has_unsafe_characters(shown)
