"""What the admin's policies add to a decision, and the last Salesforce describe.

Decisions gain the tier and score the rules gave, the stage the lead is left at, the stage
transition judged (JSON) and the flags of values a lead synced without (JSON, with a
``flagged`` column and index for the listing of leads a reviewer should fix). The ledger keeps
the stage last pushed (the stage policy judges moves from it). ``salesforce_schemas`` keeps the
last describe per object, so a what-if replay maps without calling Salesforce. Existing rows
keep their values; the new columns start empty (``flagged`` false).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in (
        sa.Column("tier", sa.Text()),
        sa.Column("score", sa.BigInteger()),
        sa.Column("lead_stage", sa.Text()),
        sa.Column("transition_json", sa.Text()),
        sa.Column("flags_json", sa.Text()),
        sa.Column("flagged", sa.Boolean(), nullable=False, server_default=sa.false()),
    ):
        op.add_column("decisions", column)
    op.create_index("decisions_flagged", "decisions", ["pipeline", "flagged", "id"])
    op.add_column("ledger", sa.Column("lead_stage", sa.Text()))
    op.create_table(
        "salesforce_schemas",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("object_name", sa.Text(), nullable=False),
        sa.Column("describe_json", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "object_name", name="salesforce_schemas_pkey"),
    )


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
