"""SQLite state store, the embedded default (``CRMBRIDGE_STATE_URL=sqlite:///crmbridge.db``).

Contract: ``commit_page`` writes a page's decisions, ledger rows, parked leads and then the
cursor in one transaction (trap 19: outcome before cursor, both or neither). WAL mode lets the
CLI read the reject log while the daemon writes. Schema changes are numbered migrations tracked
in ``PRAGMA user_version``; each runs once, in order, inside a transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmbridge.model import Cursor, Decision, Outcome
from crmbridge.ports import LedgerEntry, ParkedLead, RejectFilter, RejectRecord
from crmbridge.state.codec import decision_columns, decision_from_row, dumps, fingerprint

MIGRATIONS: tuple[str, ...] = (
    """
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
    """,
    # 2: the ledger remembers the last verdict, so an identical re-judgement (HubSpot bumps
    # lastmodifieddate on e-mail opens and other activity) adds no decision row.
    """
    ALTER TABLE ledger ADD COLUMN fingerprint TEXT;
    """,
)

#: Outcomes whose identical repetition is not stored again (a push always is).
_DEDUPED = frozenset({Outcome.REJECTED, Outcome.UNCHANGED})

#: Outcomes that settle a contact: earlier open rejects of it are resolved by them.
_SETTLING = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SQLiteStateStore:
    """The ``StateStore`` port on one SQLite file. Safe for one writer and many readers."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # -- schema -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        current = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in script.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- cursor and ledger ------------------------------------------------------------------
    def get_cursor(self, stream: str) -> Cursor:
        row = self._conn.execute(
            "SELECT modified_at_ms, last_id FROM cursors WHERE stream = ?", (stream,)
        ).fetchone()
        return Cursor(int(row[0]), int(row[1])) if row else Cursor()

    def ledger(self, contact_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        entries: dict[str, LedgerEntry] = {}
        ids = list(dict.fromkeys(contact_ids))
        # SQLite caps bound parameters (32,766 by default); chunk well below it.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT * FROM ledger WHERE contact_id IN ({marks})",  # noqa: S608 - only "?" marks
                chunk,
            ):
                entries[row["contact_id"]] = LedgerEntry(
                    contact_id=row["contact_id"],
                    status=row["status"],
                    modified_at_ms=row["modified_at_ms"],
                    payload_hash=row["payload_hash"],
                    salesforce_id=row["salesforce_id"],
                    rule_set_version=row["rule_set_version"],
                )
        return entries

    # -- the one write of a pass --------------------------------------------------------------
    def commit_page(
        self, stream: str, decisions: Sequence[Decision], cursor: Cursor | None
    ) -> None:
        now = _now()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for decision in decisions:
                self._write_decision(decision, now)
            if cursor is not None:
                self._conn.execute(
                    "INSERT INTO cursors (stream, modified_at_ms, last_id, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET"
                    " modified_at_ms = excluded.modified_at_ms, last_id = excluded.last_id,"
                    " updated_at = excluded.updated_at",
                    (stream, cursor.modified_at_ms, cursor.last_id, now),
                )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _write_decision(self, decision: Decision, now: str) -> None:
        verdict = fingerprint(decision)
        if decision.outcome in _DEDUPED:
            same = self._conn.execute(
                "UPDATE ledger SET modified_at_ms = ?, updated_at = ?"
                " WHERE contact_id = ? AND fingerprint = ?",
                (decision.modified_at_ms, now, decision.contact_id, verdict),
            )
            if same.rowcount:
                return  # the same verdict on the same data is already on record
        columns = decision_columns(decision)
        columns["decided_at"] = now
        names = ", ".join(columns)
        marks = ", ".join(f":{name}" for name in columns)
        cursor = self._conn.execute(
            f"INSERT INTO decisions ({names}) VALUES ({marks})",  # noqa: S608 - fixed names
            columns,
        )
        decision_id = cursor.lastrowid
        contact = decision.contact_id
        outcome = decision.outcome
        if outcome is Outcome.SKIPPED:
            return
        # Earlier open rejects of this contact are history now: it synced or was judged again.
        resolution = "synced later" if outcome in _SETTLING else "superseded"
        self._conn.execute(
            "UPDATE decisions SET resolved_at = ?, resolution = ? WHERE contact_id = ?"
            " AND outcome = 'rejected' AND resolved_at IS NULL AND id <> ?",
            (now, resolution, contact, decision_id),
        )
        if outcome is Outcome.PARKED:
            self._conn.execute(
                "INSERT INTO parked (contact_id, decision_id, attempts, last_error, parked_at)"
                " VALUES (?, ?, 1, ?, ?) ON CONFLICT (contact_id) DO UPDATE SET"
                " decision_id = excluded.decision_id, attempts = parked.attempts + 1,"
                " last_error = excluded.last_error, parked_at = excluded.parked_at",
                (contact, decision_id, _parked_error(decision), now),
            )
        else:
            self._conn.execute("DELETE FROM parked WHERE contact_id = ?", (contact,))
        status = {
            Outcome.PARKED: "parked",
            Outcome.REJECTED: "rejected",
        }.get(outcome, "synced")
        previous = self._conn.execute(
            "SELECT payload_hash, salesforce_id FROM ledger WHERE contact_id = ?", (contact,)
        ).fetchone()
        payload_hash = decision.payload_hash if status == "synced" else None
        salesforce_id = decision.salesforce_id
        if previous is not None:
            # A reject or a park does not undo what Salesforce already holds: keep its id and
            # the hash of what it holds, so an unchanged lead is still recognised later.
            if status != "synced":
                payload_hash = previous["payload_hash"]
            salesforce_id = salesforce_id or previous["salesforce_id"]
        self._conn.execute(
            "INSERT INTO ledger (contact_id, status, modified_at_ms, payload_hash, salesforce_id,"
            " rule_set_version, updated_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET status = excluded.status,"
            " modified_at_ms = excluded.modified_at_ms, payload_hash = excluded.payload_hash,"
            " salesforce_id = excluded.salesforce_id,"
            " rule_set_version = excluded.rule_set_version, updated_at = excluded.updated_at,"
            " fingerprint = excluded.fingerprint",
            (
                contact,
                status,
                decision.modified_at_ms,
                payload_hash,
                salesforce_id,
                decision.rule_set_version,
                now,
                verdict,
            ),
        )

    # -- parked leads -----------------------------------------------------------------------
    def parked(self, limit: int) -> list[ParkedLead]:
        rows = self._conn.execute(
            "SELECT d.*, p.attempts, p.last_error FROM parked p"
            " JOIN decisions d ON d.id = p.decision_id ORDER BY p.parked_at, p.contact_id"
            " LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            ParkedLead(decision_from_row(row), int(row["attempts"]), row["last_error"])
            for row in rows
        ]

    def count_parked(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM parked").fetchone()[0])

    # -- the reject log ---------------------------------------------------------------------
    def _reject_where(self, query: RejectFilter) -> tuple[str, list[Any]]:
        clauses = ["outcome = 'rejected'"]
        params: list[Any] = []
        if not query.include_resolved:
            clauses.append("resolved_at IS NULL")
        if query.stage:
            clauses.append("stage = ?")
            params.append(query.stage)
        if query.contact_id:
            clauses.append("contact_id = ?")
            params.append(query.contact_id)
        if query.rule_set_version:
            clauses.append("rule_set_version = ?")
            params.append(query.rule_set_version)
        if query.criterion:
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(decisions.reasons_json)"
                " WHERE json_extract(json_each.value, '$.criterion') = ?)"
            )
            params.append(query.criterion)
        return " AND ".join(clauses), params

    def rejects(self, query: RejectFilter) -> list[RejectRecord]:
        where, params = self._reject_where(query)
        rows = self._conn.execute(
            f"SELECT * FROM decisions WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*params, query.limit, query.offset],
        ).fetchall()
        return [_reject_record(row) for row in rows]

    def count_rejects(self, query: RejectFilter) -> int:
        where, params = self._reject_where(query)
        sql = f"SELECT COUNT(*) FROM decisions WHERE {where}"  # noqa: S608 - fixed clauses
        return int(self._conn.execute(sql, params).fetchone()[0])

    def reject(self, reject_id: int) -> RejectRecord | None:
        row = self._conn.execute(
            "SELECT * FROM decisions WHERE id = ? AND outcome = 'rejected'", (reject_id,)
        ).fetchone()
        return _reject_record(row) if row else None

    def decisions_of(self, contact_id: str) -> list[Decision]:
        """Every decision about one contact, oldest first (its history)."""
        rows = self._conn.execute(
            "SELECT * FROM decisions WHERE contact_id = ? ORDER BY id", (contact_id,)
        ).fetchall()
        return [decision_from_row(row) for row in rows]

    def contacts_with_status(self, status: str, *, limit: int) -> list[str]:
        """Contact ids the ledger holds in ``status`` (synced / rejected / parked)."""
        rows = self._conn.execute(
            "SELECT contact_id FROM ledger WHERE status = ? ORDER BY contact_id LIMIT ?",
            (status, limit),
        )
        return [row[0] for row in rows]

    def outcome_counts(self) -> dict[str, int]:
        """How many contacts the ledger holds in each status."""
        rows = self._conn.execute("SELECT status, COUNT(*) FROM ledger GROUP BY status")
        return {row[0]: int(row[1]) for row in rows}

    def close(self) -> None:
        self._conn.close()


def _parked_error(decision: Decision) -> str:
    return "; ".join(r.message for r in decision.reasons) or "transient failure"


def _reject_record(row: sqlite3.Row) -> RejectRecord:
    return RejectRecord(
        id=int(row["id"]),
        decided_at=row["decided_at"],
        decision=decision_from_row(row),
        resolved_at=row["resolved_at"],
        resolution=row["resolution"],
    )


__all__ = ["SQLiteStateStore", "dumps"]
