"""The state store's reads (and one write) for admins' tools: the latest decision of every
contact for what-if replays, the last Salesforce describe, the leads synced with flags.

A mixin of :class:`~crmbridge.state.store.SQLStateStore`: it uses the store's connections and
pipeline, and persists nothing a pass does not already decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table, Text, exists, func, select, type_coerce
from sqlalchemy.orm import aliased

from crmbridge.model import Decision, ObjectSchema, Outcome, Reason, RejectStage
from crmbridge.ports import DecisionRecord, LatestDecision, LedgerEntry, StoredSchema
from crmbridge.state.codec import decision_from_row, decode_text, dumps
from crmbridge.state.schema import DECISION_READ, decisions, ledger, load_text, salesforce_schemas
from crmbridge.state.store_parts import StoreParts

__all__ = ["AdminQueries"]

_SKIPPED = "skipped"


class AdminQueries(StoreParts):
    """Read queries for what-if replays and reviewers' listings (a mixin of the SQL store)."""

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    # -- the latest decision of every contact ----------------------------------------------------
    def latest_decisions(self, *, chunk_size: int = 1000) -> Iterator[list[LatestDecision]]:
        for first, last in self.contact_ranges(chunk_size=chunk_size):
            chunk = self.latest_decisions_between(first, last)
            if chunk:
                yield chunk

    def contact_ranges(self, *, chunk_size: int = 1000) -> list[tuple[str, str]]:
        query = (
            select(ledger.c.contact_id)
            .where(ledger.c.pipeline == self._pipeline)
            .order_by(ledger.c.contact_id)
        )
        with self._read() as conn:
            ids = [str(contact) for contact in conn.execute(query).scalars()]
        size = max(chunk_size, 1)
        return [
            (ids[start], ids[min(start + size, len(ids)) - 1]) for start in range(0, len(ids), size)
        ]

    def latest_decisions_between(self, first: str, last: str) -> list[LatestDecision]:
        with self._read() as conn:
            rows = conn.execute(self._latest_between(first, last)).all()
        return [_latest(row) for row in rows]

    def _latest_between(self, first: str, last: str) -> Any:
        """Each ledger entry from ``first`` to ``last`` with the columns of its contact's
        latest non-archived decision a replay reads, in contact-id order. Text columns are
        read raw (``_raw``), skipping the per-value type machinery (a replay reads 100,000
        rows), and :func:`_latest` unescapes the few stored escaped."""
        newest = (
            select(decisions.c.contact_id, func.max(decisions.c.id).label("id"))
            .where(*self._between(decisions, first, last), decisions.c.outcome != _SKIPPED)
            .group_by(decisions.c.contact_id)
            .subquery()
        )
        joined = ledger.join(newest, newest.c.contact_id == ledger.c.contact_id).join(
            decisions, decisions.c.id == newest.c.id
        )
        return (
            select(
                _raw(ledger.c.contact_id),
                ledger.c.status,
                ledger.c.modified_at_ms,
                ledger.c.payload_hash,
                _raw(ledger.c.salesforce_id),
                _raw(ledger.c.rule_set_version),
                _raw(ledger.c.lead_stage),
                decisions.c.modified_at_ms,
                decisions.c.email,
                decisions.c.outcome,
                decisions.c.stage,
                _raw(decisions.c.rule_set_version),
                decisions.c.qualified,
                decisions.c.reasons_json,
                decisions.c.inputs_json,
                _raw(decisions.c.salesforce_id),
                _raw(decisions.c.tier),
                decisions.c.score,
                _raw(decisions.c.lead_stage),
            )
            .select_from(joined)
            .where(*self._between(ledger, first, last))
            .order_by(ledger.c.contact_id)
        )

    def _between(self, table: Table, first: str, last: str) -> tuple[Any, ...]:
        """This pipeline's rows of ``table`` for the contacts from ``first`` to ``last``."""
        column = table.c.contact_id
        return (table.c.pipeline == self._pipeline, column >= first, column <= last)

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
            select(*DECISION_READ)
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


def _raw(column: Any) -> Any:
    """A ``StoredText`` column read as the text stored (unescaped by :func:`_text`)."""
    return type_coerce(column, Text())


def _text(stored: str | None) -> str | None:
    return None if stored is None else load_text(stored)


def _latest(row: Any) -> LatestDecision:
    (
        contact_id,
        status,
        ledger_ms,
        payload_hash,
        ledger_sf_id,
        ledger_version,
        ledger_stage,
        modified_at_ms,
        email,
        outcome,
        stage,
        version,
        qualified,
        reasons_json,
        inputs_json,
        salesforce_id,
        tier,
        score,
        lead_stage,
    ) = row
    contact = load_text(contact_id)
    entry = LedgerEntry(
        contact_id=contact,
        status=status,
        modified_at_ms=int(ledger_ms),
        payload_hash=payload_hash,
        salesforce_id=_text(ledger_sf_id),
        rule_set_version=_text(ledger_version),
        lead_stage=_text(ledger_stage),
    )
    decision = Decision(
        contact_id=contact,
        modified_at_ms=int(modified_at_ms),
        email=decode_text(email),
        outcome=Outcome(outcome),
        rule_set_version=load_text(version),
        qualified=bool(qualified),
        inputs=json.loads(inputs_json),
        reasons=tuple(Reason.from_json(r) for r in json.loads(reasons_json)),
        stage=RejectStage(stage) if stage else None,
        salesforce_id=_text(salesforce_id),
        tier=_text(tier),
        score=int(score) if score is not None else None,
        lead_stage=_text(lead_stage),
    )
    return LatestDecision(decision, entry)
