"""The state store's part in running crmbridge as a service: pass results, a liveness query,
the pipelines a store holds, and the lease holder ``crmbridge status`` shows.

A mixin of :class:`~crmbridge.state.store.SQLStateStore`: it uses the store's connections and
pipeline. ``record_pass`` writes one row per pass and keeps the newest ``PASS_RESULTS_KEPT``
of the pipeline; the rest read.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, text

from crmbridge.observe import Headroom, PassRecord
from crmbridge.state.codec import dumps
from crmbridge.state.leases import store_time
from crmbridge.state.schema import leases, pass_results, store_meta
from crmbridge.state.store_parts import StoreParts

__all__ = ["PASS_RESULTS_KEPT", "ServiceQueries"]

#: Pass results kept per pipeline: a week of passes every five minutes, and then some.
PASS_RESULTS_KEPT = 3000


class ServiceQueries(StoreParts):
    """Pass results, liveness and pipelines (a mixin of the SQL store)."""

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(text("SELECT 1"))

    def pipelines(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(select(store_meta.c.pipeline).order_by(store_meta.c.pipeline))
            return [str(name) for name in rows.scalars()]

    def lease_holder(self) -> str | None:
        with self._read() as conn:
            row = conn.execute(select(leases).where(leases.c.pipeline == self._pipeline)).first()
            if row is None or not row.holder:
                return None
            now = store_time(conn)
        who = f"{row.host} pid {row.pid} (token {row.token})"
        if now >= row.expires_at:
            return f"nobody: the lease of {who} expired {now - row.expires_at:.0f} s ago"
        return f"{who}, renewed {max(now - row.renewed_at, 0):.0f} s ago"

    def record_pass(self, record: PassRecord) -> None:
        row = {
            "pipeline": self._pipeline,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "duration_s": float(record.duration_s),
            "result": record.result,
            "error": record.error,
            "counts_json": dumps(dict(record.counts)),
            "reasons_json": dumps(dict(record.rejected_by_reason)),
            "hubspot_calls": record.hubspot_calls,
            "salesforce_calls": record.salesforce_calls,
            "cursor_ms": record.cursor_ms,
            "headroom_json": dumps(
                [[h.system, h.budget, h.remaining, h.limit] for h in record.headroom]
            ),
        }
        with self._write() as conn:
            conn.execute(pass_results.insert().values(row))
            oldest_kept = (
                select(pass_results.c.id)
                .where(pass_results.c.pipeline == self._pipeline)
                .order_by(pass_results.c.id.desc())
                .offset(PASS_RESULTS_KEPT - 1)
                .limit(1)
                .scalar_subquery()
            )
            conn.execute(
                delete(pass_results).where(
                    pass_results.c.pipeline == self._pipeline, pass_results.c.id < oldest_kept
                )
            )

    def recent_passes(self, limit: int) -> list[PassRecord]:
        query = (
            select(pass_results)
            .where(pass_results.c.pipeline == self._pipeline)
            .order_by(pass_results.c.id.desc())
            .limit(max(limit, 0))
        )
        with self._read() as conn:
            return [_record(row) for row in conn.execute(query)]


def _record(row: Any) -> PassRecord:
    return PassRecord(
        pipeline=row.pipeline,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=float(row.duration_s),
        result=row.result,
        error=row.error,
        counts={str(k): int(v) for k, v in json.loads(row.counts_json).items()},
        rejected_by_reason={str(k): int(v) for k, v in json.loads(row.reasons_json).items()},
        hubspot_calls=int(row.hubspot_calls),
        salesforce_calls=int(row.salesforce_calls),
        cursor_ms=int(row.cursor_ms),
        headroom=tuple(
            Headroom(str(system), str(budget), int(remaining), int(limit))
            for system, budget, remaining, limit in json.loads(row.headroom_json)
        ),
    )
