"""The state store as it was before Alembic (SQLite ``PRAGMA user_version = 2``).

A SQLite file made by that code is stamped at this revision instead of running it (see
``crmbridge.state.migrate``); a new store runs it and then the revisions after it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cursors",
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("modified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("stream", name="cursors_v2_pkey"),
    )
    op.create_table(
        "ledger",
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("modified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload_hash", sa.Text()),
        sa.Column("salesforce_id", sa.Text()),
        sa.Column("rule_set_version", sa.Text()),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text()),
        sa.PrimaryKeyConstraint("contact_id", name="ledger_v2_pkey"),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("modified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.Text()),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text()),
        sa.Column("rule_set_version", sa.Text(), nullable=False),
        sa.Column("qualified", sa.Integer(), nullable=False),
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
    op.create_index("decisions_contact", "decisions", ["contact_id", "id"])
    op.create_index("decisions_open_rejects", "decisions", ["outcome", "resolved_at", "id"])
    op.create_table(
        "parked",
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("parked_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name="parked_v2_pkey"),
    )


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
