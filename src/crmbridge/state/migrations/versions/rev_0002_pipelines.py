"""Pipelines, a reasons table, and the store's identity.

Every table gains a ``pipeline`` column in its key (several pipelines share one PostgreSQL
database); the reasons of each decision get a table of their own, indexed by criterion and by
code, so filtering rejects is an indexed query on both backends; ``store_meta`` records the
store's identity per pipeline. Existing rows move to the pipeline ``default``, keeping their
ids (reviewers quote reject ids), and a store that already held data gets its identity here.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from crmbridge.state.schema import store_text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_PIPELINE = "default"
_BATCH = 1000
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_tables() -> None:
    op.create_table(
        "store_meta",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("created_url", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", name="store_meta_pkey"),
    )
    op.create_table(
        "cursors",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("modified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "stream", name="cursors_pkey"),
    )
    op.create_table(
        "ledger",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("modified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload_hash", sa.Text()),
        sa.Column("salesforce_id", sa.Text()),
        sa.Column("rule_set_version", sa.Text()),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text()),
        sa.PrimaryKeyConstraint("pipeline", "contact_id", name="ledger_pkey"),
    )
    op.create_index("ledger_status", "ledger", ["pipeline", "status", "contact_id"])
    op.create_table(
        "decisions",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("modified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.Text()),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text()),
        sa.Column("rule_set_version", sa.Text(), nullable=False),
        sa.Column("qualified", sa.Boolean(), nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.Column("criteria_json", sa.Text(), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("payload_json", sa.Text()),
        sa.Column("payload_hash", sa.Text()),
        sa.Column("salesforce_id", sa.Text()),
        sa.Column("decided_at", sa.Text(), nullable=False),
        sa.Column("resolved_at", sa.Text()),
        sa.Column("resolution", sa.Text()),
        sqlite_autoincrement=True,
    )
    for name, columns in (
        ("decisions_open_rejects", ["pipeline", "outcome", "resolved_at", "id"]),
        ("decisions_rejects", ["pipeline", "outcome", "id"]),
        ("decisions_rule_set_version", ["pipeline", "rule_set_version", "id"]),
        ("decisions_contact", ["pipeline", "contact_id", "id"]),
    ):
        op.create_index(name, "decisions", columns)
    op.create_table(
        "reasons",
        sa.Column("decision_id", _ROW_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("criterion", sa.Text(), nullable=False),
        sa.Column("code", sa.Text()),
        sa.PrimaryKeyConstraint("decision_id", "position", name="reasons_pkey"),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name="reasons_decision_fkey", ondelete="CASCADE"
        ),
    )
    op.create_index("reasons_criterion", "reasons", ["pipeline", "criterion", "decision_id"])
    op.create_index("reasons_code", "reasons", ["pipeline", "code", "decision_id"])
    op.create_table(
        "parked",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("decision_id", _ROW_ID, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("parked_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "contact_id", name="parked_pkey"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name="parked_decision_fkey"),
    )
    op.create_index("parked_order", "parked", ["pipeline", "parked_at", "contact_id"])


_COPIES = {
    "cursors": "stream, modified_at_ms, last_id, updated_at",
    "ledger": "contact_id, status, modified_at_ms, payload_hash, salesforce_id, "
    "rule_set_version, updated_at, fingerprint",
    "decisions": "id, contact_id, modified_at_ms, email, outcome, stage, rule_set_version, "
    "{qualified}, reasons_json, criteria_json, inputs_json, payload_json, payload_hash, "
    "salesforce_id, decided_at, resolved_at, resolution",
    "parked": "contact_id, decision_id, attempts, last_error, parked_at",
}


def _copy_rows() -> None:
    """Move the old rows into the new tables, under the pipeline ``default``."""
    for table, columns in _COPIES.items():
        into = columns.replace("{qualified}", "qualified")
        select = columns.replace("{qualified}", "qualified <> 0")
        op.execute(
            f"INSERT INTO {table} (pipeline, {into})"  # noqa: S608 - fixed names only
            f" SELECT '{DEFAULT_PIPELINE}', {select} FROM legacy_{table}"
        )


def _copy_reasons() -> None:
    """One ``reasons`` row per reason stored in each decision's ``reasons_json``."""
    conn = op.get_bind()
    reasons = sa.table(
        "reasons",
        sa.column("decision_id"),
        sa.column("position"),
        sa.column("pipeline"),
        sa.column("criterion"),
        sa.column("code"),
    )
    after = 0
    while True:
        batch = conn.execute(
            sa.text(
                "SELECT id, reasons_json FROM legacy_decisions WHERE id > :after"
                " ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": _BATCH},
        ).fetchall()
        if not batch:
            return
        rows = [
            {
                "decision_id": decision_id,
                "position": position,
                "pipeline": DEFAULT_PIPELINE,
                "criterion": store_text(str(reason["criterion"])),
                "code": None if reason.get("code") is None else store_text(str(reason["code"])),
            }
            for decision_id, reasons_json in batch
            for position, reason in enumerate(json.loads(reasons_json))
        ]
        if rows:
            conn.execute(reasons.insert(), rows)
        after = batch[-1][0]


def _record_identity() -> None:
    """A store that already held data gets an identity; its location is filled on open."""
    conn = op.get_bind()
    held = conn.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM legacy_cursors) OR EXISTS (SELECT 1 FROM legacy_ledger)"
        )
    ).scalar()
    if not held:
        return
    created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    conn.execute(
        sa.text(
            "INSERT INTO store_meta (pipeline, store_id, created_at, created_url)"
            " VALUES (:pipeline, :store_id, :created_at, '')"
        ),
        {"pipeline": DEFAULT_PIPELINE, "store_id": str(uuid.uuid4()), "created_at": created_at},
    )


def upgrade() -> None:
    op.drop_index("decisions_contact", table_name="decisions")
    op.drop_index("decisions_open_rejects", table_name="decisions")
    for table in ("parked", "decisions", "ledger", "cursors"):
        op.rename_table(table, f"legacy_{table}")
    _create_tables()
    _copy_rows()
    _copy_reasons()
    _record_identity()
    for table in ("parked", "decisions", "ledger", "cursors"):
        op.drop_table(f"legacy_{table}")
    if op.get_bind().dialect.name == "postgresql":
        # Ids were copied as they were: the new sequence continues after the largest one.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('decisions', 'id'),"
            " COALESCE((SELECT MAX(id) FROM decisions), 0) + 1, false)"
        )


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
