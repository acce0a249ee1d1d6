"""The ``leases`` table: reads and writes what ``crmbridge.lease`` decides, nothing more.

Every change is one short transaction that locks the pipeline's row first (PostgreSQL: the row
is made if missing, then ``SELECT … FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE`` takes the file's
write lock), reads the store's clock, asks the pure rule what the row becomes, and writes it.
Two runners claiming at once are therefore served one after the other.

The clock is the database's on PostgreSQL (``clock_timestamp()``: replicas on several hosts
agree on one time) and the process's on SQLite (one host).

:func:`check_fence` runs inside a page commit: ``SELECT … FOR SHARE`` on PostgreSQL, so a
takeover waits for a commit under way and a commit after a takeover sees the new token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Row, select, text
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.errors import LeaseLostError
from crmbridge.lease import Fence, LeaseRecord, Step, fence_holds, free
from crmbridge.state.engine import (
    StoreLocation,
    connection_options,
    make_engine,
    parse_location,
    store_errors,
)
from crmbridge.state.schema import leases


class SQLLeaseStore:
    """The leases of every pipeline in one state store (SQLite file or PostgreSQL database).

    Raises ``StateStoreUnavailableError`` when the store stops answering (the caller retries)
    and ``StateStoreError`` when it cannot be used."""

    def __init__(self, url: str) -> None:
        self._location: StoreLocation = parse_location(url)
        with store_errors(self._location):
            self._engine = make_engine(self._location)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with store_errors(self._location, opened=True), self._engine.connect() as conn:
            conn.execution_options(**connection_options(writes=True))
            with conn.begin():
                yield conn

    def step(self, pipeline: str, decide: Step) -> Any:
        """Lock ``pipeline``'s lease row, let ``decide`` rule on it at the store's time, store
        the row it returns (if any), and return its answer."""
        with self._write() as conn:
            current = locked_lease(conn, pipeline, for_update=True)
            now = store_time(conn)
            updated, answer = decide(current, now)
            if updated is not None and updated != current:
                _store(conn, updated)
            return answer

    def read(self, pipeline: str) -> LeaseRecord:
        """The stored lease of ``pipeline`` (a free one when none was ever taken)."""
        with store_errors(self._location, opened=True), self._engine.connect() as conn:
            row = conn.execute(select(leases).where(leases.c.pipeline == pipeline)).one_or_none()
        return _record(row) if row is not None else free(pipeline)

    def read_all(self) -> list[LeaseRecord]:
        """Every stored lease, by pipeline name."""
        with store_errors(self._location, opened=True), self._engine.connect() as conn:
            rows = conn.execute(select(leases).order_by(leases.c.pipeline)).all()
        return [_record(row) for row in rows]

    def now(self) -> float:
        """The store's clock (seconds since the epoch)."""
        with store_errors(self._location, opened=True), self._engine.connect() as conn:
            return store_time(conn)

    def close(self) -> None:
        self._engine.dispose()


def locked_lease(conn: Connection, pipeline: str, *, for_update: bool) -> LeaseRecord:
    """The lease row of ``pipeline`` read inside the caller's transaction, locked against a
    concurrent change (``for_update``) or only against one under way (share)."""
    query = select(leases).where(leases.c.pipeline == pipeline)
    if conn.dialect.name == "postgresql":
        if for_update:
            # Make the row first, so two first claims lock one row instead of racing inserts.
            conn.execute(
                postgresql.insert(leases)
                .values(**_columns(free(pipeline)))
                .on_conflict_do_nothing(index_elements=["pipeline"])
            )
            query = query.with_for_update()
        else:
            query = query.with_for_update(read=True)
    row = conn.execute(query).one_or_none()
    return _record(row) if row is not None else free(pipeline)


def check_fence(conn: Connection, fence: Fence) -> None:
    """Inside a page commit: raise ``LeaseLostError`` unless ``fence`` still holds the lease."""
    token = fence.token
    current = locked_lease(conn, fence.pipeline, for_update=False)
    if token is None or not fence_holds(current, fence.holder, token):
        holder = f"{current.host} pid {current.pid}" if current.held else "nobody"
        raise LeaseLostError(
            fence.pipeline,
            f"the lease is held by {holder} (token {current.token}), not by this runner "
            f"(token {token}); nothing of this page was written",
        )


def store_time(conn: Connection) -> float:
    if conn.dialect.name == "postgresql":
        return float(
            conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one()
        )
    return time.time()


def _columns(record: LeaseRecord) -> dict[str, Any]:
    return {
        "pipeline": record.pipeline,
        "holder": record.holder,
        "host": record.host,
        "pid": record.pid,
        "token": record.token,
        "acquired_at": record.acquired_at,
        "renewed_at": record.renewed_at,
        "expires_at": record.expires_at,
    }


def _store(conn: Connection, record: LeaseRecord) -> None:
    values = _columns(record)
    changed = {name: value for name, value in values.items() if name != "pipeline"}
    if conn.dialect.name == "postgresql":
        conn.execute(
            postgresql.insert(leases)
            .values(**values)
            .on_conflict_do_update(index_elements=["pipeline"], set_=changed)
        )
    else:
        conn.execute(
            sqlite.insert(leases)
            .values(**values)
            .on_conflict_do_update(index_elements=["pipeline"], set_=changed)
        )


def _record(row: Row[Any]) -> LeaseRecord:
    return LeaseRecord(
        pipeline=row.pipeline,
        holder=row.holder,
        host=row.host,
        pid=int(row.pid),
        token=int(row.token),
        acquired_at=float(row.acquired_at),
        renewed_at=float(row.renewed_at),
        expires_at=float(row.expires_at),
    )
