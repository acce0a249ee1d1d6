"""State stores: SQLite (the default) or PostgreSQL, one schema and one migration history.

``open_store(url)`` opens the store a URL names and returns the ``StateStore`` port; only
``create=True`` (``crmbridge state init``) makes a new one. Nothing outside this package knows
which backend it talks to.
"""

from __future__ import annotations

from pathlib import Path

from crmbridge.journal import PushJournal
from crmbridge.lease import Fence, LeaseStore
from crmbridge.ports import StateStore
from crmbridge.state import migrate
from crmbridge.state.engine import make_engine, parse_location, sqlite_path, store_errors
from crmbridge.state.journal import SQLPushJournal
from crmbridge.state.leases import SQLLeaseStore
from crmbridge.state.store import DEFAULT_PIPELINE, SQLStateStore, check_sqlite_path

__all__ = [
    "DEFAULT_PIPELINE",
    "StateStore",
    "lease_lock_path",
    "open_journal",
    "open_leases",
    "open_store",
    "parse_location",
    "schema_revisions",
    "sqlite_path",
]


def open_store(
    url: str,
    *,
    pipeline: str = DEFAULT_PIPELINE,
    create: bool = False,
    read_only: bool = False,
    fence: Fence | None = None,
) -> StateStore:
    """Open the state store ``url`` names for ``pipeline``, migrating its schema first.

    ``read_only`` (reports) accepts a store that cannot be written but is already at the
    newest schema; otherwise an unwritable store is refused at once. Raises
    ``StateStoreMissingError`` (a ConfigError) when there is none and ``create`` is false,
    ``StateStoreError`` when it cannot be used, ``ConfigError`` for a malformed URL. With a
    ``fence``, a page commit by a runner that lost the pipeline's lease raises
    ``LeaseLostError`` and writes nothing."""
    return SQLStateStore(url, pipeline=pipeline, create=create, read_only=read_only, fence=fence)


def open_leases(url: str) -> LeaseStore:
    """The leases of the store ``url`` names; open the store with ``open_store`` first (it
    migrates the schema the leases live in)."""
    return SQLLeaseStore(url)


def open_journal(url: str, pipeline: str, fence: Fence | None) -> PushJournal:
    """The push journal of ``pipeline`` in the store ``url`` names (``crmbridge.journal``),
    its writes fenced by ``fence``; open the store with ``open_store`` first."""
    return SQLPushJournal(url, pipeline, fence)


def lease_lock_path(url: str, pipeline: str) -> Path | None:
    """The file a runner of ``pipeline`` locks beside a SQLite store (``None`` for other
    stores): one host's runners wait on it, and the lock dies with its process."""
    location = parse_location(url)
    if location.sqlite_path is None:
        return None
    return location.sqlite_path.with_name(f"{location.sqlite_path.name}.{pipeline}.lock")


def schema_revisions(url: str) -> tuple[str | None, str]:
    """(the schema revision of the store ``url`` names, the newest this crmbridge knows),
    read without migrating anything. ``None``: empty, or from before schema revisions."""
    location = parse_location(url)
    with store_errors(location):
        check_sqlite_path(location, create=False)
        engine = make_engine(location)
        try:
            with engine.connect() as conn:
                current = migrate.current_revision(conn)
        finally:
            engine.dispose()
    return current, migrate.head_revision()
