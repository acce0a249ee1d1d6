"""The reject log's free-text search on an index.

Decisions gain ``search_text``: a reject's e-mail, reasons and HubSpot values as one normalised,
lower-cased text (``crmbridge.state.search``), filled here for every stored reject. Then the
index, where the backend can make it:

* SQLite: an FTS5 table with the ``trigram`` tokenizer over that column (SQLite 3.34 or later),
  kept in step by triggers on ``decisions``.
* PostgreSQL: a GIN index with ``pg_trgm``'s ``gin_trgm_ops``. ``CREATE EXTENSION IF NOT EXISTS
  pg_trgm`` runs in a savepoint: a role that may not create it (before PostgreSQL 13, or not the
  database's owner) leaves the store without the index.

Without the index the migration still succeeds and the search reads every reject's text (the
store logs a warning when it is opened).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
import structlog
from alembic import op

from crmbridge.state.search import searchable_text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000
#: The first SQLite with FTS5's trigram tokenizer.
_SQLITE_TRIGRAM = (3, 34, 0)

log = structlog.get_logger(__name__)


def upgrade() -> None:
    op.add_column("decisions", sa.Column("search_text", sa.Text()))
    _backfill()
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_index(conn)
    else:
        _postgres_index(conn)


def _backfill() -> None:
    """The searchable text of every stored reject, a batch at a time."""
    conn = op.get_bind()
    decisions = sa.table(
        "decisions",
        sa.column("id", sa.BigInteger()),
        sa.column("outcome", sa.Text()),
        sa.column("email", sa.Text()),
        sa.column("reasons_json", sa.Text()),
        sa.column("inputs_json", sa.Text()),
        sa.column("search_text", sa.Text()),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(
                decisions.c.id,
                decisions.c.email,
                decisions.c.reasons_json,
                decisions.c.inputs_json,
            )
            .where(decisions.c.id > last, decisions.c.outcome == "rejected")
            .order_by(decisions.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        last = int(rows[-1].id)
        conn.execute(
            sa.update(decisions)
            .where(decisions.c.id == sa.bindparam("row_id"))
            .values(search_text=sa.bindparam("text")),
            [
                {
                    "row_id": int(row.id),
                    "text": searchable_text(row.email, row.reasons_json, row.inputs_json),
                }
                for row in rows
            ],
        )


def _sqlite_index(conn: sa.Connection) -> None:
    if sqlite3.sqlite_version_info < _SQLITE_TRIGRAM:
        version = ".".join(str(part) for part in sqlite3.sqlite_version_info)
        log.warning(
            "search_index_unavailable",
            reason=f"SQLite {version} has no FTS5 trigram tokenizer (3.34+)",
            hint="free-text search reads every reject; run crmbridge with a newer SQLite",
        )
        return
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE decisions_search USING fts5(search_text,"
                " content='decisions', content_rowid='id', tokenize='trigram case_sensitive 1')"
            )
    except sa.exc.OperationalError as exc:  # no FTS5 compiled in
        log.warning(
            "search_index_unavailable",
            reason=f"SQLite cannot make an FTS5 trigram table ({exc.orig})",
            hint="free-text search reads every reject; run crmbridge with an SQLite with FTS5",
        )
        return
    # External content: every decision has its row (no text for other outcomes than rejected),
    # filled from the table, and the triggers keep it in step with each write.
    conn.exec_driver_sql("INSERT INTO decisions_search (decisions_search) VALUES ('rebuild')")
    conn.exec_driver_sql(
        "CREATE TRIGGER decisions_search_insert AFTER INSERT ON decisions BEGIN"
        " INSERT INTO decisions_search (rowid, search_text) VALUES (new.id, new.search_text);"
        " END"
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER decisions_search_delete AFTER DELETE ON decisions BEGIN"
        " INSERT INTO decisions_search (decisions_search, rowid, search_text)"
        " VALUES ('delete', old.id, old.search_text); END"
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER decisions_search_update AFTER UPDATE OF search_text ON decisions BEGIN"
        " INSERT INTO decisions_search (decisions_search, rowid, search_text)"
        " VALUES ('delete', old.id, old.search_text);"
        " INSERT INTO decisions_search (rowid, search_text) VALUES (new.id, new.search_text);"
        " END"
    )


def _postgres_index(conn: sa.Connection) -> None:
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "search_index_unavailable",
            reason=f"cannot create the pg_trgm extension ({str(exc.orig).strip()})",
            hint="free-text search reads every reject; to index it, have the database's "
            "owner run CREATE EXTENSION pg_trgm (PostgreSQL 13+ lets an owner do it) and "
            "CREATE INDEX decisions_search_trgm ON decisions USING gin (search_text gin_trgm_ops)",
        )
        return
    # The extension may live in another schema than the tables (made there by an admin).
    schema = conn.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).scalar_one()
    conn.exec_driver_sql(
        "CREATE INDEX decisions_search_trgm ON decisions"
        f" USING gin (search_text {schema}.gin_trgm_ops)"
    )


def downgrade() -> None:
    raise NotImplementedError("the state store does not migrate down: restore a backup")
