"""Schema migrations, run programmatically with Alembic on the store's own connection.

The revisions ship inside the package (``migrations/versions``); users need no alembic.ini.
A SQLite file from before Alembic (``PRAGMA user_version`` 1 or 2) is first brought to
schema 2 and stamped at revision ``0001``, then upgraded like any other store, in place and
with its data, inside the caller's transaction.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect

from crmbridge.errors import StateStoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The revision a pre-Alembic SQLite file at ``user_version`` 2 corresponds to.
LEGACY_REVISION = "0001"
#: Alembic's commands set module globals (``alembic.context``, ``alembic.op``) while they run:
#: pipelines opening their stores in several threads take turns.
_ALEMBIC = threading.Lock()


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    """The newest revision this version of crmbridge knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the store is at (``None``: empty or from before Alembic); writes nothing."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection, *, shown: str) -> None:
    """Bring the schema to the head revision inside the caller's transaction.

    ``shown`` names the store in errors (a schema newer than this crmbridge, an unknown one)."""
    with _ALEMBIC:
        _upgrade(conn, shown)


def _upgrade(conn: Connection, shown: str) -> None:
    _adopt_legacy_sqlite(conn, shown)
    try:
        command.upgrade(_config(conn), "head")
    except CommandError as exc:
        raise StateStoreError(
            shown,
            f"has a schema this version of crmbridge does not know ({exc})",
            hint="it was written by a newer crmbridge: upgrade crmbridge, or restore a backup "
            "made by this version",
        ) from None


def _adopt_legacy_sqlite(conn: Connection, shown: str) -> None:
    if conn.dialect.name != "sqlite":
        return
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables or "decisions" not in tables:
        return
    version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    if version == 1:
        # Schema 2 added the fingerprint of the last verdict to the ledger.
        conn.exec_driver_sql("ALTER TABLE ledger ADD COLUMN fingerprint TEXT")
    elif version != 2:
        raise StateStoreError(
            shown,
            f"has an unknown schema (user_version {version})",
            hint="point CRMBRIDGE_STATE_URL at a crmbridge state file",
        )
    command.stamp(_config(conn), LEGACY_REVISION)
