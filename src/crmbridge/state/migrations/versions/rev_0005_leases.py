"""Leases and the push journal: who may write each pipeline, and what is in flight.

``leases`` has one row per pipeline naming the runner that may write it (``crmbridge.lease``).

``holder`` is the runner's identity (host, pid and a random run id; empty when free), ``host``
and ``pid`` are shown in logs and status, ``token`` is the fencing token every page commit
checks (it only grows), and the times are seconds since the epoch on the store's clock.

``push_journal`` has one row per lead pushed to Salesforce whose page is not committed yet
(``crmbridge.journal``): the payload's hash, whether the lead had a Salesforce record before,
and Salesforce's answer once it came. A runner that takes over after a crash between a push
and its commit reads it instead of pushing the same leads again.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.Float(precision=53), nullable=False),
        sa.Column("renewed_at", sa.Float(precision=53), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", name="leases_pkey"),
    )
    op.create_table(
        "push_journal",
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=False),
        sa.Column("had_lead", sa.Boolean(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.Float(precision=53), nullable=False),
        sa.Column("salesforce_id", sa.Text()),
        sa.Column("created", sa.Boolean()),
        sa.PrimaryKeyConstraint("pipeline", "contact_id", name="push_journal_pkey"),
    )


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
