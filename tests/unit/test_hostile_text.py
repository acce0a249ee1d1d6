"""Lone surrogates and control characters in HubSpot values: counted, mapped, hashed, stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmbridge.mapping import load_mapping
from crmbridge.mapping.transforms import salesforce_length, truncate_text
from crmbridge.model import Decision, Outcome, SourceContact
from crmbridge.pipeline import payload_hash
from crmbridge.state.codec import decision_columns, decision_from_row
from crmbridge.state.sqlite import SQLiteStateStore
from crmbridge.testing import reference_lead_schema
from crmbridge.text import clean_text, replace_lone_surrogates, utf16_length

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"

#: Strings that broke, or could break, encoding, hashing or storage.
HOSTILE = [
    "Head of \ud83d",
    "\ude00 alone",
    "nul\x00inside",
    "\x1b[2J\x1b[H\x1b[31mPWNED\x1b[0m\x1b]0;owned\x07",
    "json:not json",
    'json:"looks encoded"',
    "tab\tnew\nline\rreturn",
    "emoji 😀 and é",
    "",
]


def test_salesforce_length_counts_a_lone_surrogate_once() -> None:
    """A lone surrogate is one UTF-16 code unit, not a UnicodeEncodeError."""
    assert salesforce_length("Head of \ud83d") == 9
    assert utf16_length("😀\ud83d") == 3
    assert truncate_text("ab\ud83dcd", 3) == "ab\ud83d"


def test_clean_text_replaces_surrogates_and_drops_control_characters() -> None:
    """Lone surrogates become U+FFFD, a hand-made pair its emoji, C0 controls but tab/LF/CR go."""
    assert clean_text("Head of \ud83d") == "Head of \ufffd"
    assert replace_lone_surrogates("x\ud83d\ude00y") == "x😀y"
    assert clean_text("a\x00b\x1b[0m\x07c") == "ab[0mc"
    assert clean_text("tab\tnew\nline\rreturn") == "tab\tnew\nline\rreturn"


def test_mapped_text_sends_a_replacement_character_and_no_control_characters() -> None:
    """A title cut inside an emoji maps to U+FFFD; NUL and escape codes never reach Salesforce."""
    mapping = load_mapping(SHIPPED)
    props: dict[str, str | None] = {
        "lastname": "Lima\x00",
        "company": "Acme\x1b[31m Tools",
        "email": "ana@example.com",
        "jobtitle": "Head of \ud83d",
        "need": "line one\nline\ttwo\x07",
    }
    result = mapping.map(SourceContact("101", props, 0), reference_lead_schema())
    assert result.lead is not None, result.reasons
    fields = result.lead.fields
    assert fields["Title"] == "Head of \ufffd"
    assert fields["LastName"] == "Lima"
    assert fields["Company"] == "Acme[31m Tools"
    assert fields["Description"] == "line one\nline\ttwo"
    body = json.dumps(fields, ensure_ascii=False).encode("utf-8")  # a request body, strictly
    assert b"\x00" not in body
    assert len(payload_hash(fields)) == 64


def test_payload_hash_never_raises_and_is_unchanged_for_valid_text() -> None:
    """The payload hash takes any str and stays what it was for text that has a UTF-8 form."""
    assert payload_hash({"Title": "Head of \ud83d"}) != payload_hash({"Title": "Head of \ufffd"})
    # The hash of valid text is the one earlier versions stored (no needless re-push on upgrade).
    assert (
        payload_hash({"B": "é", "A": 1})
        == "2d817862ab93c924f46c7f2717fa0cc2778174ebec969540e9693241d36f79a4"
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_codec_round_trips_any_string_exactly(value: str) -> None:
    """Inputs and e-mail come back from the codec exactly, and the columns encode as UTF-8."""
    decision = Decision(
        contact_id="7",
        modified_at_ms=1,
        email=value,
        outcome=Outcome.SKIPPED,
        rule_set_version="v1",
        qualified=False,
        inputs={"jobtitle": value, value or "empty": None},
    )
    columns = decision_columns(decision)
    for column in columns.values():
        if isinstance(column, str):
            column.encode("utf-8")
            assert "\x00" not in column
    back = decision_from_row(columns)
    assert back.email == value
    assert dict(back.inputs) == dict(decision.inputs)


def test_codec_joins_a_surrogate_pair_built_by_hand() -> None:
    """Two halves of an emoji side by side come back as the emoji (JSON joins escaped pairs)."""
    columns = decision_columns(
        Decision("7", 1, "a\ud83d\ude00", Outcome.SKIPPED, "v1", False, {"t": "\ud83d\ude00"})
    )
    back = decision_from_row(columns)
    assert back.email == "a😀"
    assert back.inputs == {"t": "😀"}


def test_sqlite_store_keeps_hostile_strings_exactly(tmp_path: Path) -> None:
    """Every hostile string survives a commit to SQLite and a read back, byte for byte."""
    store = SQLiteStateStore(tmp_path / "state.db")
    try:
        decisions = [
            Decision(
                contact_id=str(n),
                modified_at_ms=1,
                email=value,
                outcome=Outcome.SKIPPED,
                rule_set_version="v1",
                qualified=False,
                inputs={"jobtitle": value},
            )
            for n, value in enumerate(HOSTILE)
        ]
        store.commit_page("s", decisions, None)
        for n, value in enumerate(HOSTILE):
            [stored] = store.decisions_of(str(n))
            assert stored.email == value
            assert stored.inputs == {"jobtitle": value}
    finally:
        store.close()
