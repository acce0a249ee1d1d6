"""The state store's reads (and one write) for admins' tools: the latest decision of every
contact for what-if replays, the last Salesforce describe, the leads synced with flags.

A mixin of :class:`~crmbridge.state.store.SQLStateStore`: it uses the store's connections and
pipeline, and persists nothing a pass does not already decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Table, and_, exists, func, literal, null, select
from sqlalchemy.orm import aliased

from crmbridge.model import ObjectSchema
from crmbridge.ports import DecisionRecord, LatestDecision, LedgerEntry, StoredSchema
from crmbridge.state.codec import decision_from_row, dumps
from crmbridge.state.schema import decisions, ledger, salesforce_schemas

__all__ = ["AdminQueries"]

_SKIPPED = "skipped"


class AdminQueries:
    """Read queries for what-if replays and reviewers' listings (a mixin of the SQL store)."""

    _pipeline: str

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _now(self) -> str:
        raise NotImplementedError

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    # -- the latest decision of every contact ----------------------------------------------------
    def latest_decisions(self, *, chunk_size: int = 1000) -> Iterator[list[LatestDecision]]:
        after: str | None = None
        while True:
            with self._read() as conn:
                query = select(ledger).where(ledger.c.pipeline == self._pipeline)
                if after is not None:
                    query = query.where(ledger.c.contact_id > after)
                entries = conn.execute(
                    query.order_by(ledger.c.contact_id).limit(max(chunk_size, 1))
                ).all()
                if not entries:
                    return
                first, last = entries[0].contact_id, entries[-1].contact_id
                rows = conn.execute(self._latest_in(first, last)).all()
            by_contact = {row.contact_id: row for row in rows}
            chunk = [
                LatestDecision(decision_from_row(by_contact[e.contact_id]._mapping), _entry(e))
                for e in entries
                if e.contact_id in by_contact
            ]
            if chunk:
                yield chunk
            after = last

    def _latest_in(self, first: str, last: str) -> Any:
        """The latest non-archived decision of each contact from ``first`` to ``last`` (ids in
        ledger order), without the two largest columns a replay does not read."""
        in_range = and_(
            decisions.c.pipeline == self._pipeline,
            decisions.c.contact_id >= first,
            decisions.c.contact_id <= last,
            decisions.c.outcome != _SKIPPED,
        )
        newest = select(func.max(decisions.c.id)).where(in_range).group_by(decisions.c.contact_id)
        wanted = [c for c in decisions.c if c.name not in ("criteria_json", "payload_json")]
        return select(
            *wanted, literal("[]").label("criteria_json"), null().label("payload_json")
        ).where(decisions.c.id.in_(newest.scalar_subquery()))

    # -- the last describe --------------------------------------------------------------------
    def save_schema(self, schema: ObjectSchema) -> None:
        row = {
            "pipeline": self._pipeline,
            "object_name": schema.name,
            "describe_json": dumps(schema.to_json()),
            "fetched_at": self._now(),
        }
        with self._write() as conn:
            self._upsert(conn, salesforce_schemas, [row])

    def latest_schema(self, object_name: str) -> StoredSchema | None:
        query = select(salesforce_schemas.c.describe_json, salesforce_schemas.c.fetched_at).where(
            salesforce_schemas.c.pipeline == self._pipeline,
            salesforce_schemas.c.object_name == object_name,
        )
        with self._read() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        return StoredSchema(ObjectSchema.from_json(json.loads(row.describe_json)), row.fetched_at)

    # -- leads synced with flags --------------------------------------------------------------
    def _flagged_conditions(self) -> Sequence[Any]:
        later = aliased(decisions)
        superseded = exists().where(
            later.c.pipeline == decisions.c.pipeline,
            later.c.contact_id == decisions.c.contact_id,
            later.c.id > decisions.c.id,
            later.c.outcome != _SKIPPED,
        )
        return (
            decisions.c.pipeline == self._pipeline,
            decisions.c.flagged.is_(True),
            ~superseded,
        )

    def flagged(self, *, limit: int, offset: int = 0) -> list[DecisionRecord]:
        query = (
            select(decisions)
            .where(*self._flagged_conditions())
            .order_by(decisions.c.id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
        with self._read() as conn:
            return [
                DecisionRecord(int(row.id), row.decided_at, decision_from_row(row._mapping))
                for row in conn.execute(query)
            ]

    def count_flagged(self) -> int:
        query = select(func.count()).select_from(decisions).where(*self._flagged_conditions())
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        contact_id=row.contact_id,
        status=row.status,
        modified_at_ms=int(row.modified_at_ms),
        payload_hash=row.payload_hash,
        salesforce_id=row.salesforce_id,
        rule_set_version=row.rule_set_version,
        lead_stage=row.lead_stage,
    )
