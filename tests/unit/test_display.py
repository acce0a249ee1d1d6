"""What reaches a terminal: outside text is shown with every control character escaped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmbridge.display import has_unsafe_characters, visible

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
