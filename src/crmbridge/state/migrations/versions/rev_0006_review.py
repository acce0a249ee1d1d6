"""The reviewers' workflow: a status per reject, its audit trail, exceptions, console users.

Decisions gain the lead source (for the reviewers' filters and the lead-source statistics),
the exception a reviewer granted (JSON, on a lead synced despite the rules), and, for rejects,
the review status (open, escalated, excepted, dismissed, resolved), to whom it is escalated,
since when it has its status, and a flag a replay sets to judge it again on the next pass.
``review_audit`` keeps every status change; ``users`` the console's accounts.

Existing rejects become ``open``, or ``resolved`` where the ledger already resolved them (their
status dates from then). The lead source of existing decisions is read from the stored inputs'
``hs_analytics_source`` (the shipped ``lead_source:``), where they hold it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The lead-source property the shipped map names (existing rows are read for it).
_LEAD_SOURCE = "hs_analytics_source"
_BATCH = 1000


def upgrade() -> None:
    for column in (
        sa.Column("lead_source", sa.Text()),
        sa.Column("exception_json", sa.Text()),
        sa.Column("review_status", sa.Text()),
        sa.Column("assignee", sa.Text()),
        sa.Column("status_changed_at", sa.Text()),
        sa.Column("requeued", sa.Boolean(), nullable=False, server_default=sa.false()),
    ):
        op.add_column("decisions", column)
    op.execute(
        "UPDATE decisions SET review_status = CASE WHEN resolved_at IS NULL THEN 'open' "
        "ELSE 'resolved' END, status_changed_at = COALESCE(resolved_at, decided_at) "
        "WHERE outcome = 'rejected'"
    )
    _backfill_lead_source()
    op.create_index("decisions_review", "decisions", ["pipeline", "outcome", "review_status", "id"])
    op.create_index("decisions_lead_source", "decisions", ["pipeline", "lead_source", "id"])
    op.create_index("decisions_tier", "decisions", ["pipeline", "tier", "id"])
    op.create_index("decisions_requeued", "decisions", ["pipeline", "requeued", "id"])
    op.create_table(
        "review_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column(
            "decision_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name="review_audit_decision_fkey",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("review_audit_decision", "review_audit", ["pipeline", "decision_id", "id"])
    op.create_index("review_audit_at", "review_audit", ["pipeline", "at"])
    op.create_table(
        "users",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _backfill_lead_source() -> None:
    """Read each stored decision's lead source from its inputs, a batch at a time."""
    conn = op.get_bind()
    decisions = sa.table(
        "decisions",
        sa.column("id", sa.BigInteger()),
        sa.column("inputs_json", sa.Text()),
        sa.column("lead_source", sa.Text()),
    )
    marker = f'"{_LEAD_SOURCE}":'
    last = 0
    while True:
        rows = conn.execute(
            sa.select(decisions.c.id, decisions.c.inputs_json)
            .where(decisions.c.id > last, decisions.c.inputs_json.contains(marker))
            .order_by(decisions.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        last = int(rows[-1].id)
        updates = []
        for row in rows:
            value = json.loads(row.inputs_json).get(_LEAD_SOURCE)
            # Lead sources are HubSpot's own enumeration: anything else is left out.
            if isinstance(value, str) and value.isascii() and value.isprintable():
                updates.append({"row_id": int(row.id), "source": value})
        if updates:
            conn.execute(
                sa.update(decisions)
                .where(decisions.c.id == sa.bindparam("row_id"))
                .values(lead_source=sa.bindparam("source")),
                updates,
            )


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
