"""Pass results: one row per pass of a pipeline (for ``crmbridge status`` and readiness).

Each row holds when the pass ran, how long it took, how it ended (``ok``, ``stopped_early``,
``interrupted``, ``blocked``, ``credentials_refused``, ``crashed``), its lead counts and
reasons (JSON), the API calls it made, the cursor after it and the API headroom it saw
(JSON). The store keeps the newest rows of each pipeline only. Existing data is untouched.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pass_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("counts_json", sa.Text(), nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.Column("hubspot_calls", sa.BigInteger(), nullable=False),
        sa.Column("salesforce_calls", sa.BigInteger(), nullable=False),
        sa.Column("cursor_ms", sa.BigInteger(), nullable=False),
        sa.Column("headroom_json", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("pass_results_newest", "pass_results", ["pipeline", "id"])


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
