"""Text renderings of rejects and summaries: outside text never acts on the terminal."""

from __future__ import annotations

import json

from crmbridge import reports
from crmbridge.model import (
    CriterionResult,
    Decision,
    Flag,
    FlagAction,
    Outcome,
    PassSummary,
    Reason,
    RejectStage,
)
from crmbridge.ports import DecisionRecord, RejectRecord

HOSTILE = "\x1b[2J\x1b[H\x1b[31mPWNED\x1b[0m\x1b]0;owned\x07"
BREAKERS = "line\nbreak\rreturn\ttab\bback\x9b31m\u202eevil\ud83d"


def hostile_record() -> RejectRecord:
    decision = Decision(
        contact_id="101",
        modified_at_ms=1_790_000_000_000,
        email=f"x{HOSTILE}@example.com",
        outcome=Outcome.REJECTED,
        rule_set_version="bant\x1b[1m",
        qualified=False,
        inputs={"jobtitle": HOSTILE, "company": BREAKERS, "phone": None},
        reasons=(
            Reason(f"salesforce.X{BREAKERS}", f"Salesforce X: {BREAKERS}", code=f"X{HOSTILE}"),
            Reason("authority", f'authority: job title "{HOSTILE}" is not one of CEO, CFO'),
        ),
        stage=RejectStage.QUALIFICATION,
        criteria=(
            CriterionResult("authority", passed=False, reason=f"authority: {HOSTILE}"),
            CriterionResult(f"need{HOSTILE}", passed=True),
        ),
    )
    return RejectRecord(id=7, decided_at="2026-11-28T10:00:00Z", decision=decision)


def assert_safe(text: str) -> None:
    assert not any((ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F for ch in text), text
    assert not any(0xD800 <= ord(ch) <= 0xDFFF or 0x202A <= ord(ch) <= 0x202E for ch in text)
    text.encode("utf-8")


def test_table_escapes_every_control_character() -> None:
    """`rejects list` shows escapes instead of obeying them, one line per reject."""
    table = reports.rejects_table([hostile_record()], total=1, offset=0)
    assert_safe(table)
    assert "\\x1b[2J\\x1b[H\\x1b[31mPWNED" in table
    rows = [line for line in table.splitlines() if line.strip().startswith("7 ")]
    assert len(rows) == 1
    assert "line\\nbreak\\rreturn\\ttab\\x08back" in rows[0]


def test_detail_escapes_every_control_character() -> None:
    """`rejects show` escapes reasons, codes, criteria, inputs, e-mail and rule version."""
    text = reports.reject_text(hostile_record())
    assert_safe(text)
    assert 'job title "\\x1b[2J\\x1b[H\\x1b[31mPWNED\\x1b[0m\\x1b]0;owned\\x07"' in text
    assert "line\\nbreak\\rreturn\\ttab\\x08back\\x9b31m\\u202eevil\\ud83d" in text
    assert "bant\\x1b[1m" in text
    assert "need\\x1b[2J" in text


def test_json_keeps_the_exact_values() -> None:
    """JSON output round-trips every value exactly, escapes and all."""
    record = hostile_record()
    rendered = json.dumps(reports.reject_json(record))
    assert_safe(rendered)
    loaded = json.loads(rendered)
    assert loaded["inputs"]["jobtitle"] == HOSTILE
    assert loaded["inputs"]["company"] == BREAKERS
    assert loaded["reasons"][0]["message"] == f"Salesforce X: {BREAKERS}"


def test_summary_escapes_reason_names_and_the_stop_message() -> None:
    """Reason names and a stop message built from a remote answer are shown escaped."""
    summary = PassSummary(
        rejected=1,
        rejected_by_reason={f"salesforce.{HOSTILE}": 1},
        stopped_early=f"RetryableApiError: salesforce: {BREAKERS}",
    )
    text = reports.summary_text(summary)
    assert_safe(text)
    assert "salesforce.\\x1b[2J" in text
    assert "STOPPED EARLY: RetryableApiError: salesforce: line\\nbreak" in text


def flagged_record(record_id: int, contact_id: str, *flags: Flag) -> DecisionRecord:
    decision = Decision(
        contact_id=contact_id,
        modified_at_ms=1_790_000_000_000,
        email=None,
        outcome=Outcome.CREATED,
        rule_set_version="bant-1",
        qualified=True,
        inputs={},
        flags=flags,
    )
    return DecisionRecord(id=record_id, decided_at="2026-11-28T10:00:00Z", decision=decision)


MISSING_COMPANY = Flag(
    "Company", "REQUIRED", 'Company: HubSpot property "company" is empty', FlagAction.PLACEHOLDER
)


def test_flagged_lists_each_lead_with_its_flags_and_the_choice_made() -> None:
    """`flagged` shows one line per lead: every flag's problem with the choice made, and the
    page's place among all flagged leads."""
    bad_email = Flag(
        "Email", "INVALID_EMAIL", 'Email: "a\x1b[2J@b" is not valid', FlagAction.OMITTED
    )
    table = reports.flagged_table(
        [flagged_record(9, "1001", MISSING_COMPANY, bad_email), flagged_record(4, "1002")],
        total=12,
        offset=5,
    )
    assert_safe(table)
    header, first, second, _, footer = table.splitlines()
    assert header.split() == ["ID", "CONTACT", "EMAIL", "SYNCED", "(UTC)", "FLAGS"]
    assert first.split()[:5] == ["9", "1001", "-", "2026-11-28", "10:00:00"]
    assert first.endswith(
        'Company: HubSpot property "company" is empty [placeholder]; '
        'Email: "a\\x1b[2J@b" is not valid [omitted]'
    )
    assert second.split()[:2] == ["4", "1002"]
    assert footer == "6-7 of 12."


def test_flagged_and_rejects_tables_share_their_lead_columns() -> None:
    """Both listings put the id, contact, e-mail and time of a lead at the same places."""
    flagged = reports.flagged_table([flagged_record(7, "101", MISSING_COMPANY)], total=1, offset=0)
    rejects = reports.rejects_table([hostile_record()], total=1, offset=0)
    lead_columns = 6 + 2 + 11 + 31 + 20
    flagged_row, rejects_row = flagged.splitlines()[1], rejects.splitlines()[1]
    assert flagged_row[:19] == rejects_row[:19] == "     7  101        "
    assert flagged_row[50:lead_columns] == rejects_row[50:lead_columns] == "2026-11-28 10:00:00 "


def test_no_flagged_lead_says_so() -> None:
    """An empty page of flagged leads is a sentence, not an empty table."""
    assert reports.flagged_table([], total=0, offset=0) == "No lead is synced with flags."
