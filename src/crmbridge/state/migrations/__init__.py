"""Alembic migrations of the state store, shipped in the package and run on open (no alembic.ini).

One history for SQLite and PostgreSQL. ``crmbridge.state.migrate`` drives them; developers can
also point the ``alembic`` command at this directory.
"""
