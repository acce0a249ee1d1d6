"""Alembic's environment: migrate on the connection ``crmbridge.state.migrate`` hands over.

The caller owns the transaction, so an upgrade is all or nothing on both backends (SQLite and
PostgreSQL both have transactional DDL).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
