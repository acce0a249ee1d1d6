"""The ``push_journal`` table: persists what ``crmbridge.journal`` needs, every write fenced by
the pipeline's lease (a runner that lost it cannot journal, so it cannot push either)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.journal import Intent
from crmbridge.lease import Fence
from crmbridge.model import PushResult
from crmbridge.state.engine import connection_options, make_engine, parse_location, store_errors
from crmbridge.state.leases import check_fence
from crmbridge.state.schema import ledger, push_journal

_CHUNK = 500


class SQLPushJournal:
    """The push journal of one pipeline in a state store (SQLite or PostgreSQL)."""

    def __init__(self, url: str, pipeline: str, fence: Fence | None) -> None:
        self._location = parse_location(url)
        self._pipeline = pipeline
        self._fence = fence
        with store_errors(self._location):
            self._engine = make_engine(self._location)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with store_errors(self._location, opened=True), self._engine.connect() as conn:
            conn.execution_options(**connection_options(writes=True))
            with conn.begin():
                if self._fence is not None:
                    check_fence(conn, self._fence)
                yield conn

    def begin(self, hashes: Mapping[str, str]) -> dict[str, Intent]:
        ids = list(hashes)
        with self._write() as conn:
            earlier = self._intents(conn, ids)
            fresh = [cid for cid in ids if cid not in earlier]
            known = self._ledger_ids(conn, fresh)
            token = self._fence.token if self._fence is not None and self._fence.token else 0
            rows = []
            for cid, digest in hashes.items():
                before = earlier.get(cid)
                if before is not None and before.payload_hash == digest:
                    continue
                had_lead = before.had_lead or before.answered if before else cid in known
                rows.append(
                    {
                        "pipeline": self._pipeline,
                        "contact_id": cid,
                        "payload_hash": digest,
                        "had_lead": had_lead,
                        "token": token,
                        "recorded_at": time.time(),
                        "salesforce_id": None,
                        "created": None,
                    }
                )
            if rows:
                _upsert(conn, rows)
        return earlier

    def answered(self, results: Sequence[PushResult]) -> None:
        if not results:
            return
        with self._write() as conn:
            for result in results:
                where = (push_journal.c.pipeline == self._pipeline) & (
                    push_journal.c.contact_id == result.contact_id
                )
                if result.success and result.salesforce_id:
                    conn.execute(
                        update(push_journal)
                        .where(where)
                        .values(salesforce_id=result.salesforce_id, created=result.created)
                    )
                else:
                    conn.execute(delete(push_journal).where(where))

    def _intents(self, conn: Connection, ids: Sequence[str]) -> dict[str, Intent]:
        found: dict[str, Intent] = {}
        for start in range(0, len(ids), _CHUNK):
            query = select(push_journal).where(
                push_journal.c.pipeline == self._pipeline,
                push_journal.c.contact_id.in_(ids[start : start + _CHUNK]),
            )
            for row in conn.execute(query):
                found[row.contact_id] = Intent(
                    contact_id=row.contact_id,
                    payload_hash=row.payload_hash,
                    had_lead=bool(row.had_lead),
                    salesforce_id=row.salesforce_id,
                    created=row.created,
                )
        return found

    def _ledger_ids(self, conn: Connection, ids: Sequence[str]) -> set[str]:
        """The contacts among ``ids`` whose ledger knows a Salesforce record."""
        known: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            query = select(ledger.c.contact_id).where(
                ledger.c.pipeline == self._pipeline,
                ledger.c.contact_id.in_(ids[start : start + _CHUNK]),
                ledger.c.salesforce_id.is_not(None),
            )
            known.update(str(cid) for cid in conn.execute(query).scalars())
        return known

    def close(self) -> None:
        self._engine.dispose()


def forget(conn: Connection, pipeline: str, contact_ids: Sequence[str]) -> None:
    """Inside a page commit: the journal rows of the committed contacts go."""
    ids = list(dict.fromkeys(contact_ids))
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            delete(push_journal).where(
                push_journal.c.pipeline == pipeline,
                push_journal.c.contact_id.in_(ids[start : start + _CHUNK]),
            )
        )


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    keys = ["pipeline", "contact_id"]
    changed = [name for name in rows[0] if name not in keys]
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(push_journal)
        conn.execute(
            pg.on_conflict_do_update(
                index_elements=keys, set_={name: pg.excluded[name] for name in changed}
            ),
            rows,
        )
    else:
        lite = sqlite.insert(push_journal)
        conn.execute(
            lite.on_conflict_do_update(
                index_elements=keys, set_={name: lite.excluded[name] for name in changed}
            ),
            rows,
        )
