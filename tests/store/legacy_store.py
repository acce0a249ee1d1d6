"""Build a SQLite state file as crmbridge wrote it before schema revisions (``user_version`` 2).

The DDL is the one that code ran (its two numbered migrations, verbatim); the rows are what it
wrote for a short history: a reject later synced, an open reject with two reasons, a parked
lead, an archived contact, and a cursor. (Checked once against that code's own output: the
same schema and rows, timestamps aside.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crmbridge.model import Decision, Outcome, Reason, RejectStage
from crmbridge.state.codec import decision_columns, fingerprint
from tests.decisions import SALESFORCE_ID, decision

SCHEMA_1 = """
    CREATE TABLE cursors (
        stream TEXT PRIMARY KEY,
        modified_at_ms INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE ledger (
        contact_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        modified_at_ms INTEGER NOT NULL,
        payload_hash TEXT,
        salesforce_id TEXT,
        rule_set_version TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        contact_id TEXT NOT NULL,
        modified_at_ms INTEGER NOT NULL,
        email TEXT,
        outcome TEXT NOT NULL,
        stage TEXT,
        rule_set_version TEXT NOT NULL,
        qualified INTEGER NOT NULL,
        reasons_json TEXT NOT NULL,
        criteria_json TEXT NOT NULL,
        inputs_json TEXT NOT NULL,
        payload_json TEXT,
        payload_hash TEXT,
        salesforce_id TEXT,
        decided_at TEXT NOT NULL,
        resolved_at TEXT,
        resolution TEXT
    );
    CREATE INDEX decisions_contact ON decisions (contact_id, id);
    CREATE INDEX decisions_open_rejects ON decisions (outcome, resolved_at, id);
    CREATE TABLE parked (
        contact_id TEXT PRIMARY KEY,
        decision_id INTEGER NOT NULL REFERENCES decisions (id),
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        parked_at TEXT NOT NULL
    );
"""
SCHEMA_2 = "ALTER TABLE ledger ADD COLUMN fingerprint TEXT;"

STREAM = "hubspot.contacts"
CURSOR = (5_000, 42)
WHEN = "2026-11-01T10:00:00.000Z"
LATER = "2026-11-02T10:00:00.000Z"

#: The history, in the order the decisions were made (their ids are 1, 2, …); the lead parked
#: at 4 failed again in the next pass (6).
SYNCED_LATER = decision("1", Outcome.REJECTED)
SYNCED = decision("1", Outcome.CREATED, modified_at_ms=2_000)
OPEN_REJECT = decision(
    "2",
    Outcome.REJECTED,
    reasons=(
        Reason("budget", "budget: 30000 is not > 50000", code="RULE"),
        Reason("mapping.Company", 'Company: required, but "company" is empty', code="REQUIRED"),
    ),
    stage=RejectStage.QUALIFICATION,
)
PARKED = decision("3", Outcome.PARKED)
ARCHIVED = decision("4", Outcome.SKIPPED)
HISTORY = (SYNCED_LATER, SYNCED, OPEN_REJECT, PARKED, ARCHIVED, PARKED)


def build_legacy_store(path: Path, *, user_version: int = 2) -> None:
    """Write the history above into a new SQLite file at schema ``user_version`` (1 or 2)."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA_1 + (SCHEMA_2 if user_version == 2 else ""))
        for item in HISTORY:
            _insert_decision(conn, item)
        conn.execute(
            "UPDATE decisions SET resolved_at = ?, resolution = 'synced later' WHERE id = 1",
            (LATER,),
        )
        conn.execute("INSERT INTO cursors VALUES (?, ?, ?, ?)", (STREAM, *CURSOR, LATER))
        ledger = [
            ("1", "synced", 2_000, "h1", SALESFORCE_ID, "v1", LATER, fingerprint(SYNCED)),
            ("2", "rejected", 1_000, None, None, "v1", WHEN, fingerprint(OPEN_REJECT)),
            ("3", "parked", 1_000, None, None, "v1", WHEN, fingerprint(PARKED)),
        ]
        for row in ledger:
            conn.execute(
                f"INSERT INTO ledger VALUES ({', '.join('?' * (7 if user_version == 1 else 8))})",
                row[:7] if user_version == 1 else row,
            )
        conn.execute("INSERT INTO parked VALUES ('3', 6, 2, 'locked', ?)", (WHEN,))
        conn.execute(f"PRAGMA user_version = {user_version}")
        conn.commit()
    finally:
        conn.close()


def _insert_decision(conn: sqlite3.Connection, item: Decision) -> None:
    columns = decision_columns(item)
    for added_later in ("tier", "score", "lead_stage", "transition_json", "flags_json", "flagged"):
        del columns[added_later]  # revision 0003 added them
    for added_later in ("lead_source", "exception_json", "review_status"):
        del columns[added_later]  # revision 0006 added them
    columns["decided_at"] = WHEN
    names = ", ".join(columns)
    marks = ", ".join(f":{name}" for name in columns)
    conn.execute(f"INSERT INTO decisions ({names}) VALUES ({marks})", columns)
