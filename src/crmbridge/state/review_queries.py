"""The state store's part of the reviewers' workflow: status changes with their audit trail,
the rejects the next pass judges again, the counts behind statistics and audit reports, and
the console's users.

A mixin of :class:`~crmbridge.state.store.SQLStateStore`: which change makes sense is decided
by :func:`crmbridge.review.refusal` (pure); this only reads and persists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, cast, delete, func, insert, select, update
from sqlalchemy.orm import aliased

from crmbridge.ports import DecisionCount, DueReject, SourceQuality, User
from crmbridge.review import (
    ACTIONS,
    Action,
    AuditEntry,
    ReviewChange,
    ReviewResult,
    Status,
    refusal,
)
from crmbridge.state.codec import decision_from_row
from crmbridge.state.schema import DECISION_READ, decisions, ledger, reasons, review_audit, users
from crmbridge.state.store_parts import StoreParts

__all__ = ["ReviewQueries"]

_REJECTED = "rejected"
_SKIPPED = "skipped"
#: Ids per ``IN (…)``: well below SQLite's bound-parameter cap.
_CHUNK = 500


class ReviewQueries(StoreParts):
    """Review status changes, audit trail, due rejects, counts and users (a store mixin)."""

    # -- status changes ------------------------------------------------------------------------
    def change_review(self, reject_ids: Sequence[int], change: ReviewChange) -> list[ReviewResult]:
        now = self._now()
        wanted = list(dict.fromkeys(reject_ids))
        results: dict[int, ReviewResult] = {}
        with self._write() as conn:
            rows = {}
            for start in range(0, len(wanted), _CHUNK):
                query = select(*DECISION_READ).where(
                    decisions.c.pipeline == self._pipeline,
                    decisions.c.outcome == _REJECTED,
                    decisions.c.id.in_(wanted[start : start + _CHUNK]),
                )
                rows.update({int(row.id): row for row in conn.execute(query)})
            audit = []
            for reject_id in wanted:
                row = rows.get(reject_id)
                if row is None:
                    results[reject_id] = ReviewResult(reject_id, False, "no reject with this id")
                    continue
                status = row.review_status or Status.OPEN.value
                refused = refusal(change, status, decision_from_row(row._mapping))
                if refused is not None:
                    results[reject_id] = ReviewResult(reject_id, False, refused, status)
                    continue
                to_status = ACTIONS[change.action][1].value
                values: dict[str, Any] = {"review_status": to_status}
                if change.action is Action.REPLAY:
                    values["requeued"] = True
                else:
                    values["status_changed_at"] = now
                    values["assignee"] = (
                        change.assignee.strip()
                        if change.action is Action.ESCALATE and change.assignee
                        else None
                    )
                    values["requeued"] = False
                conn.execute(update(decisions).where(decisions.c.id == reject_id).values(values))
                audit.append(
                    {
                        "pipeline": self._pipeline,
                        "decision_id": reject_id,
                        "at": now,
                        "actor": change.actor,
                        "action": change.action.value,
                        "from_status": status,
                        "to_status": to_status,
                        "assignee": values.get("assignee"),
                        "note": change.note or None,
                    }
                )
                results[reject_id] = ReviewResult(reject_id, True, "done", status, to_status)
            if audit:
                conn.execute(insert(review_audit), audit)
        return [results[reject_id] for reject_id in reject_ids]

    def audit_trail(self, reject_id: int) -> list[AuditEntry]:
        query = (
            select(review_audit)
            .where(
                review_audit.c.pipeline == self._pipeline, review_audit.c.decision_id == reject_id
            )
            .order_by(review_audit.c.id)
        )
        with self._read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def audit_entries(self, since: str, until: str) -> list[AuditEntry]:
        query = (
            select(review_audit)
            .where(
                review_audit.c.pipeline == self._pipeline,
                review_audit.c.at >= since,
                review_audit.c.at < until,
            )
            .order_by(review_audit.c.id)
        )
        with self._read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    # -- what the next pass judges again -------------------------------------------------------
    def due_rejects(self, limit: int) -> list[DueReject]:
        due = (
            decisions.c.pipeline == self._pipeline,
            decisions.c.outcome == _REJECTED,
            decisions.c.resolved_at.is_(None),
        )
        approved = select(*DECISION_READ).where(
            *due, decisions.c.review_status == Status.EXCEPTED.value
        )
        requeued = select(*DECISION_READ).where(
            *due,
            decisions.c.requeued.is_(True),
            decisions.c.review_status != Status.EXCEPTED.value,
        )
        out: list[DueReject] = []
        with self._read() as conn:
            for query, excepted in ((approved, True), (requeued, False)):
                rows = conn.execute(query.order_by(decisions.c.id).limit(max(limit, 0))).all()
                for row in rows:
                    exception = self._approval(conn, int(row.id)) if excepted else None
                    out.append(DueReject(int(row.id), decision_from_row(row._mapping), exception))
        return sorted(out, key=lambda d: d.reject_id)[: max(limit, 0)]

    def _approval(self, conn: Connection, reject_id: int) -> dict[str, str]:
        """The latest approval of a reject: who, when, the note."""
        row = conn.execute(
            select(review_audit)
            .where(
                review_audit.c.pipeline == self._pipeline,
                review_audit.c.decision_id == reject_id,
                review_audit.c.action == Action.APPROVE.value,
            )
            .order_by(review_audit.c.id.desc())
            .limit(1)
        ).one_or_none()
        approval = {"reject_id": str(reject_id)}
        if row is not None:
            approval.update(approved_by=row.actor, approved_at=row.at, note=row.note or "")
        return approval

    def unmark_requeued(self, reject_ids: Sequence[int]) -> None:
        ids = list(reject_ids)
        with self._write() as conn:
            for start in range(0, len(ids), _CHUNK):
                conn.execute(
                    update(decisions)
                    .where(
                        decisions.c.pipeline == self._pipeline,
                        decisions.c.id.in_(ids[start : start + _CHUNK]),
                    )
                    .values(requeued=False)
                )

    # -- counts for statistics and audit reports -----------------------------------------------
    def decision_counts(
        self, since: str, until: str, *, by_reason: bool = False
    ) -> list[DecisionCount]:
        day = func.substr(decisions.c.decided_at, 1, 10).label("day")
        has_exception = decisions.c.exception_json.is_not(None).label("exception")
        keys: list[Any] = [
            day,
            decisions.c.outcome,
            decisions.c.stage,
            decisions.c.tier,
            decisions.c.lead_source,
            has_exception,
        ]
        if by_reason:
            keys += [reasons.c.criterion, reasons.c.code]
        query = select(*keys, func.count().label("n")).where(
            decisions.c.pipeline == self._pipeline,
            decisions.c.decided_at >= since,
            decisions.c.decided_at < until,
        )
        if by_reason:
            query = query.join(reasons, reasons.c.decision_id == decisions.c.id)
        query = query.group_by(*keys)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            DecisionCount(
                day=row.day,
                outcome=row.outcome,
                stage=row.stage,
                tier=row.tier,
                lead_source=row.lead_source,
                exception=bool(row.exception),
                count=int(row.n),
                criterion=row.criterion if by_reason else None,
                code=row.code if by_reason else None,
            )
            for row in rows
        ]

    def source_quality(self) -> list[SourceQuality]:
        newest = (
            select(decisions.c.contact_id, func.max(decisions.c.id).label("id"))
            .where(decisions.c.pipeline == self._pipeline, decisions.c.outcome != _SKIPPED)
            .group_by(decisions.c.contact_id)
            .subquery()
        )
        latest = aliased(decisions)
        query = (
            select(
                latest.c.lead_source,
                func.count().label("contacts"),
                func.sum(cast(latest.c.qualified, Integer)).label("qualified"),
            )
            .select_from(newest.join(latest, latest.c.id == newest.c.id))
            .join(
                ledger,
                (ledger.c.pipeline == self._pipeline)
                & (ledger.c.contact_id == newest.c.contact_id),
            )
            .group_by(latest.c.lead_source)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            SourceQuality(row.lead_source, int(row.contacts), int(row.qualified or 0))
            for row in rows
        ]

    # -- console users ---------------------------------------------------------------------------
    def users(self) -> list[User]:
        with self._read() as conn:
            return [_user(row) for row in conn.execute(select(users).order_by(users.c.name))]

    def user(self, name: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).one_or_none()
        return _user(row) if row is not None else None

    def save_user(self, name: str, role: str, password_hash: str, *, new: bool) -> bool:
        now = self._now()
        with self._write() as conn:
            exists = conn.execute(select(users.c.name).where(users.c.name == name)).first()
            if new == (exists is not None):
                return False
            if new:
                conn.execute(
                    insert(users).values(
                        name=name,
                        role=role,
                        password_hash=password_hash,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    update(users)
                    .where(users.c.name == name)
                    .values(role=role, password_hash=password_hash, updated_at=now)
                )
        return True

    def remove_user(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(delete(users).where(users.c.name == name)).rowcount > 0


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=int(row.id),
        reject_id=int(row.decision_id),
        at=row.at,
        actor=row.actor,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        assignee=row.assignee,
        note=row.note,
    )


def _user(row: Any) -> User:
    return User(row.name, row.role, row.password_hash, row.created_at, row.updated_at)
