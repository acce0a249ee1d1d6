"""The ``StateStore`` port on SQLAlchemy Core, for SQLite and PostgreSQL alike.

The store only persists: what a decision changes (dedup, resolutions, parking, what the ledger
keeps) is decided by ``crmbridge.state.ledger``. ``commit_page`` writes a page's decisions,
reasons, parked leads, ledger rows and then the cursor in one transaction (outcome before
cursor, both or neither). Opening a store applies pending migrations; only ``create=True``
(``crmbridge state init``) makes a new one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Row,
    Select,
    Table,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.errors import ConfigProblem, Location, StateStoreError, StateStoreMissingError
from crmbridge.lease import Fence
from crmbridge.model import Cursor, Decision
from crmbridge.ports import (
    LedgerEntry,
    ParkedLead,
    RejectFilter,
    RejectRecord,
    StoreIdentity,
)
from crmbridge.review import QUEUE, SYSTEM_ACTOR, Action, Status
from crmbridge.state import migrate
from crmbridge.state.admin_queries import AdminQueries
from crmbridge.state.codec import decision_columns, decision_from_row
from crmbridge.state.engine import (
    STATE_URL_SETTING,
    StoreLocation,
    connection_options,
    make_engine,
    parse_location,
    store_errors,
)
from crmbridge.state.journal import forget
from crmbridge.state.leases import check_fence
from crmbridge.state.ledger import ContactState, WritePlan, plan
from crmbridge.state.review_queries import ReviewQueries
from crmbridge.state.schema import (
    DECISION_READ,
    cursors,
    decisions,
    ledger,
    parked,
    reasons,
    review_audit,
    store_meta,
)
from crmbridge.state.search import has_index, searchable_text, text_condition
from crmbridge.state.service_queries import ServiceQueries

DEFAULT_PIPELINE = "default"
#: Contact ids per ``IN (…)`` query: well below SQLite's bound-parameter cap.
_CHUNK = 500
_REJECTED = "rejected"

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC text with milliseconds and ``Z``: the same on every backend."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SQLStateStore(AdminQueries, ReviewQueries, ServiceQueries):
    """The ``StateStore`` of one pipeline in a SQLite file or a PostgreSQL database.

    Opening it migrates the schema. Without ``create`` a store that does not exist (no file,
    or no identity recorded for ``pipeline``) raises ``StateStoreMissingError``; with it, a
    new store is made and its identity recorded. ``StateStoreError`` when it is unusable,
    including, unless ``read_only``, when it cannot be written: a pass must not push leads it
    then cannot record.

    With a ``fence``, every page commit first checks, inside its transaction, that the fence
    still holds the pipeline's lease, and raises ``LeaseLostError`` (writing nothing) if not."""

    def __init__(
        self,
        url: str,
        *,
        pipeline: str = DEFAULT_PIPELINE,
        create: bool = False,
        read_only: bool = False,
        clock: Clock = _utc_now,
        fence: Fence | None = None,
    ) -> None:
        self._location = parse_location(url)
        self._pipeline = pipeline
        self._clock = clock
        self._fence = fence
        self._opened = False  # until then any failure is a StateStoreError (a person acts)
        with store_errors(self._location):
            check_sqlite_path(self._location, create=create)
            self._engine = make_engine(self._location)
            try:
                self._identity = self._open(create=create, read_only=read_only)
            except BaseException:
                self._engine.dispose()
                raise
        self._opened = True
        if self._identity.moved:
            log.warning(
                "state_store_moved",
                store_id=self._identity.store_id,
                created_url=self._identity.created_url,
                url=self._identity.url,
                hint="this store was made elsewhere (copied, moved or restored): fine if "
                "intended; if not, CRMBRIDGE_STATE_URL points at the wrong store",
            )

    # -- opening ----------------------------------------------------------------------------
    def _open(self, *, create: bool, read_only: bool) -> StoreIdentity:
        here = self._location.canonical_url
        with self._write() as conn:
            migrate.upgrade(conn, shown=self._location.shown)
            row = conn.execute(
                select(store_meta).where(store_meta.c.pipeline == self._pipeline)
            ).one_or_none()
            if row is None:
                if not create:
                    raise _missing(self._location, self._pipeline)
                values = {
                    "pipeline": self._pipeline,
                    "store_id": str(uuid.uuid4()),
                    "created_at": self._now(),
                    "created_url": here,
                }
                conn.execute(store_meta.insert().values(values))
                log.info("state_store_created", **values)
                self._check_search_index(conn)
                return StoreIdentity(**values, url=here)
            if not read_only:
                # A write that changes nothing: a read-only file or role fails here, not
                # after the first page was pushed.
                conn.execute(
                    update(store_meta)
                    .where(store_meta.c.pipeline == self._pipeline)
                    .values(store_id=store_meta.c.store_id)
                )
            created_url = row.created_url
            if not created_url:
                # Made before stores had identities: take where it is now as where it was made.
                created_url = here
                conn.execute(
                    update(store_meta)
                    .where(store_meta.c.pipeline == self._pipeline)
                    .values(created_url=here)
                )
            self._check_search_index(conn)
            return StoreIdentity(row.store_id, self._pipeline, row.created_at, created_url, here)

    def _check_search_index(self, conn: Connection) -> None:
        self._search_indexed = has_index(conn)
        if not self._search_indexed:
            log.warning(
                "search_index_missing",
                store=self._location.shown,
                hint="free-text search (rejects list --search, the console's search box) reads "
                "every reject: slower on a large reject log, the same results; see the "
                "README's reject log section for how to add the index",
            )

    def identity(self) -> StoreIdentity:
        return self._identity

    # -- connections --------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with store_errors(self._location, opened=self._opened), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with store_errors(self._location, opened=self._opened), self._engine.connect() as conn:
            conn.execution_options(**connection_options(writes=True))
            with conn.begin():
                yield conn

    def _now(self) -> str:
        return iso_utc(self._clock())

    # -- cursor and ledger ------------------------------------------------------------------
    def get_cursor(self, stream: str) -> Cursor:
        with self._read() as conn:
            row = conn.execute(
                select(cursors.c.modified_at_ms, cursors.c.last_id).where(
                    cursors.c.pipeline == self._pipeline, cursors.c.stream == stream
                )
            ).one_or_none()
        return Cursor(int(row.modified_at_ms), int(row.last_id)) if row else Cursor()

    def ledger(self, contact_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        with self._read() as conn:
            states = self._states(conn, contact_ids)
        return {cid: s.ledger for cid, s in states.items() if s.ledger is not None}

    def _states(self, conn: Connection, contact_ids: Sequence[str]) -> dict[str, ContactState]:
        """The stored state of each contact that has a ledger entry."""
        states: dict[str, ContactState] = {}
        ids = list(dict.fromkeys(contact_ids))
        joined = ledger.outerjoin(
            parked,
            (parked.c.pipeline == ledger.c.pipeline) & (parked.c.contact_id == ledger.c.contact_id),
        )
        for start in range(0, len(ids), _CHUNK):
            query = (
                select(ledger, parked.c.attempts)
                .select_from(joined)
                .where(
                    ledger.c.pipeline == self._pipeline,
                    ledger.c.contact_id.in_(ids[start : start + _CHUNK]),
                )
            )
            for row in conn.execute(query):
                entry = LedgerEntry(
                    contact_id=row.contact_id,
                    status=row.status,
                    modified_at_ms=int(row.modified_at_ms),
                    payload_hash=row.payload_hash,
                    salesforce_id=row.salesforce_id,
                    rule_set_version=row.rule_set_version,
                    lead_stage=row.lead_stage,
                )
                states[row.contact_id] = ContactState(entry, row.fingerprint, row.attempts or 0)
        return states

    # -- the one write of a pass --------------------------------------------------------------
    def commit_page(
        self, stream: str, decisions_: Sequence[Decision], cursor: Cursor | None
    ) -> None:
        now = self._now()
        with self._write() as conn:
            if self._fence is not None:
                check_fence(conn, self._fence)
            states = self._states(conn, [d.contact_id for d in decisions_])
            steps: list[tuple[Decision, WritePlan]] = []
            for decision in decisions_:
                step = plan(decision, states.get(decision.contact_id, ContactState()))
                states[decision.contact_id] = step.after
                steps.append((decision, step))
            recorded = [decision for decision, step in steps if step.record]
            ids = iter(self._insert_decisions(conn, recorded, now))
            batch = _PageWrites()
            for decision, step in steps:
                decision_id = next(ids) if step.record else None
                self._apply(conn, decision, step, decision_id=decision_id, now=now, batch=batch)
            self._flush(conn, batch)
            forget(conn, self._pipeline, [d.contact_id for d in decisions_])
            if cursor is not None:
                self._upsert(
                    conn,
                    cursors,
                    [
                        {
                            "pipeline": self._pipeline,
                            "stream": stream,
                            "modified_at_ms": cursor.modified_at_ms,
                            "last_id": cursor.last_id,
                            "updated_at": now,
                        }
                    ],
                )

    def _insert_decisions(
        self, conn: Connection, recorded: Sequence[Decision], now: str
    ) -> list[int]:
        """Insert the decision rows of a page in one statement; their ids, in page order."""
        if not recorded:
            return []
        ids = _allocate_decision_ids(conn, len(recorded))
        rows = []
        for decision_id, decision in zip(ids, recorded, strict=True):
            columns = decision_columns(decision)
            columns["qualified"] = bool(columns["qualified"])
            columns["flagged"] = bool(columns["flagged"])
            columns["status_changed_at"] = now if columns["review_status"] else None
            columns["search_text"] = (
                searchable_text(columns["email"], columns["reasons_json"], columns["inputs_json"])
                if columns["outcome"] == _REJECTED
                else None
            )
            rows.append(
                {"id": decision_id, "pipeline": self._pipeline, "decided_at": now, **columns}
            )
        conn.execute(decisions.insert(), rows)
        return ids

    def _apply(
        self,
        conn: Connection,
        decision: Decision,
        step: WritePlan,
        *,
        decision_id: int | None,
        now: str,
        batch: _PageWrites,
    ) -> None:
        """Persist one plan: a resolution now (it must not reach rejects recorded after this
        decision), the rest collected for one statement per table at the end of the page."""
        contact = decision.contact_id
        if step.resolution is not None and decision_id is not None:
            self._resolve(
                conn,
                contact=contact,
                decision_id=decision_id,
                resolution=step.resolution,
                now=now,
                batch=batch,
            )
        if decision_id is not None:
            batch.reasons.extend(
                {
                    "decision_id": decision_id,
                    "position": position,
                    "pipeline": self._pipeline,
                    "criterion": reason.criterion,
                    "code": reason.code,
                }
                for position, reason in enumerate(decision.reasons)
            )
        if step.park is not None:
            batch.parked[contact] = {
                "pipeline": self._pipeline,
                "contact_id": contact,
                "decision_id": decision_id,
                "attempts": step.park.attempts,
                "last_error": step.park.last_error,
                "parked_at": now,
            }
        elif step.unpark:
            batch.parked[contact] = None
        if step.ledger is not None:
            entry = step.ledger
            batch.ledger[contact] = {
                "pipeline": self._pipeline,
                "contact_id": contact,
                "status": entry.status,
                "modified_at_ms": entry.modified_at_ms,
                "payload_hash": entry.payload_hash,
                "salesforce_id": entry.salesforce_id,
                "rule_set_version": entry.rule_set_version,
                "updated_at": now,
                "fingerprint": step.fingerprint,
                "lead_stage": entry.lead_stage,
            }

    def _resolve(
        self,
        conn: Connection,
        *,
        contact: str,
        decision_id: int,
        resolution: str,
        now: str,
        batch: _PageWrites,
    ) -> None:
        """Resolve the contact's unresolved rejects recorded before ``decision_id`` (at most
        one, by the ledger rules), whatever their review status, each with an audit entry."""
        where = (
            decisions.c.pipeline == self._pipeline,
            decisions.c.contact_id == contact,
            decisions.c.outcome == _REJECTED,
            decisions.c.resolved_at.is_(None),
            decisions.c.id < decision_id,
        )
        earlier = conn.execute(select(decisions.c.id, decisions.c.review_status).where(*where))
        for row in earlier:
            batch.audit.append(
                {
                    "pipeline": self._pipeline,
                    "decision_id": int(row.id),
                    "at": now,
                    "actor": SYSTEM_ACTOR,
                    "action": Action.RESOLVE.value,
                    "from_status": row.review_status or Status.OPEN.value,
                    "to_status": Status.RESOLVED.value,
                    "assignee": None,
                    "note": f"{resolution} (decision {decision_id})",
                }
            )
        conn.execute(
            update(decisions)
            .where(*where)
            .values(
                resolved_at=now,
                resolution=resolution,
                review_status=Status.RESOLVED.value,
                status_changed_at=now,
                requeued=False,
            )
        )

    def _flush(self, conn: Connection, batch: _PageWrites) -> None:
        if batch.audit:
            conn.execute(review_audit.insert(), batch.audit)
        if batch.reasons:
            conn.execute(reasons.insert(), batch.reasons)
        unparked = [contact for contact, row in batch.parked.items() if row is None]
        for start in range(0, len(unparked), _CHUNK):
            conn.execute(
                delete(parked).where(
                    parked.c.pipeline == self._pipeline,
                    parked.c.contact_id.in_(unparked[start : start + _CHUNK]),
                )
            )
        self._upsert(conn, parked, [row for row in batch.parked.values() if row is not None])
        self._upsert(conn, ledger, list(batch.ledger.values()))

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, replacing those whose primary key exists (one statement)."""
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        changed = [name for name in rows[0] if name not in keys]
        upsert: Insert
        if conn.dialect.name == "postgresql":
            pg = postgresql.insert(table)
            upsert = pg.on_conflict_do_update(
                index_elements=keys, set_={name: pg.excluded[name] for name in changed}
            )
        else:
            lite = sqlite.insert(table)
            upsert = lite.on_conflict_do_update(
                index_elements=keys, set_={name: lite.excluded[name] for name in changed}
            )
        conn.execute(upsert, rows)

    # -- parked leads -----------------------------------------------------------------------
    def parked(self, limit: int) -> list[ParkedLead]:
        query = (
            select(*DECISION_READ, parked.c.attempts, parked.c.last_error)
            .join(parked, parked.c.decision_id == decisions.c.id)
            .where(parked.c.pipeline == self._pipeline)
            .order_by(parked.c.parked_at, parked.c.contact_id)
            .limit(max(limit, 0))
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            ParkedLead(decision_from_row(row._mapping), int(row.attempts), row.last_error)
            for row in rows
        ]

    def count_parked(self) -> int:
        query = select(func.count()).select_from(parked).where(parked.c.pipeline == self._pipeline)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    # -- the reject log ---------------------------------------------------------------------
    def _reject_conditions(self, query: RejectFilter) -> list[ColumnElement[bool]]:
        conditions = [decisions.c.pipeline == self._pipeline, decisions.c.outcome == _REJECTED]
        statuses = query.statuses
        if statuses is None and not query.include_resolved:
            statuses = tuple(s.value for s in QUEUE)
        if statuses is not None:
            conditions.append(decisions.c.review_status.in_(list(statuses)))
        for column_, value in (
            (decisions.c.stage, query.stage),
            (decisions.c.contact_id, query.contact_id),
            (decisions.c.rule_set_version, query.rule_set_version),
            (decisions.c.lead_source, query.lead_source),
            (decisions.c.tier, query.tier),
            (decisions.c.assignee, query.assignee),
        ):
            if value:
                conditions.append(column_ == value)
        if query.since:
            conditions.append(decisions.c.decided_at >= query.since)
        if query.until:
            # A day is included whole: every time on it sorts before the day after's "~".
            conditions.append(decisions.c.decided_at < query.until + "~")
        if query.text:
            conditions.append(
                text_condition(
                    query.text, dialect=self._engine.dialect.name, indexed=self._search_indexed
                )
            )
        for column, wanted in (
            (reasons.c.criterion, query.criterion),
            (reasons.c.code, query.code),
        ):
            if wanted:
                conditions.append(
                    exists().where(
                        reasons.c.decision_id == decisions.c.id,
                        reasons.c.pipeline == self._pipeline,
                        column == wanted,
                    )
                )
        return conditions

    def rejects(self, query: RejectFilter) -> list[RejectRecord]:
        statement: Select[Any] = (
            select(*DECISION_READ)
            .where(*self._reject_conditions(query))
            .order_by(decisions.c.id.desc())
            .limit(max(query.limit, 0))
            .offset(max(query.offset, 0))
        )
        with self._read() as conn:
            return [_reject_record(row) for row in conn.execute(statement)]

    def reject_ids(self, query: RejectFilter) -> list[int]:
        statement = (
            select(decisions.c.id)
            .where(*self._reject_conditions(query))
            .order_by(decisions.c.id.desc())
        )
        with self._read() as conn:
            return [int(i) for i in conn.execute(statement).scalars()]

    def count_rejects(self, query: RejectFilter) -> int:
        statement = select(func.count()).select_from(decisions)
        with self._read() as conn:
            return int(conn.execute(statement.where(*self._reject_conditions(query))).scalar_one())

    def reject(self, reject_id: int) -> RejectRecord | None:
        statement = select(*DECISION_READ).where(
            decisions.c.pipeline == self._pipeline,
            decisions.c.id == reject_id,
            decisions.c.outcome == _REJECTED,
        )
        with self._read() as conn:
            row = conn.execute(statement).one_or_none()
        return _reject_record(row) if row else None

    def decisions_of(self, contact_id: str) -> list[Decision]:
        statement = (
            select(*DECISION_READ)
            .where(decisions.c.pipeline == self._pipeline, decisions.c.contact_id == contact_id)
            .order_by(decisions.c.id)
        )
        with self._read() as conn:
            return [decision_from_row(row._mapping) for row in conn.execute(statement)]

    def contacts_with_status(self, status: str, *, limit: int) -> list[str]:
        statement = (
            select(ledger.c.contact_id)
            .where(ledger.c.pipeline == self._pipeline, ledger.c.status == status)
            .order_by(ledger.c.contact_id)
            .limit(max(limit, 0))
        )
        with self._read() as conn:
            return [str(contact) for contact in conn.execute(statement).scalars()]

    def outcome_counts(self) -> dict[str, int]:
        statement = (
            select(ledger.c.status, func.count())
            .where(ledger.c.pipeline == self._pipeline)
            .group_by(ledger.c.status)
        )
        with self._read() as conn:
            return {str(status): int(count) for status, count in conn.execute(statement)}

    def close(self) -> None:
        self._engine.dispose()


class _PageWrites:
    """Rows collected over one page, written with one statement per table at its end."""

    def __init__(self) -> None:
        self.reasons: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.parked: dict[str, dict[str, Any] | None] = {}  # None: unpark
        self.ledger: dict[str, dict[str, Any]] = {}


def _allocate_decision_ids(conn: Connection, count: int) -> list[int]:
    """``count`` new decision ids, ascending (newest last), never used before.

    Given explicitly, they let a page's decisions go in as one executemany and its reasons and
    parked leads point at them. PostgreSQL draws them from the column's sequence (other
    pipelines may write at the same time); SQLite's writer holds the write lock, so the ids
    after the largest ever used (AUTOINCREMENT never reuses one) are free."""
    if conn.dialect.name == "postgresql":
        drawn = conn.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('decisions', 'id'))"
                " FROM generate_series(1, :n)"
            ),
            {"n": count},
        ).scalars()
        return sorted(int(value) for value in drawn)
    largest = conn.execute(
        text(
            "SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM decisions"
            " UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'decisions')"
        )
    ).scalar()
    start = int(largest or 0) + 1
    return list(range(start, start + count))


def _reject_record(row: Row[Any]) -> RejectRecord:
    return RejectRecord(
        id=int(row.id),
        decided_at=row.decided_at,
        decision=decision_from_row(row._mapping),
        resolved_at=row.resolved_at,
        resolution=row.resolution,
        status=row.review_status or Status.OPEN.value,
        status_changed_at=row.status_changed_at,
        assignee=row.assignee,
        requeued=bool(row.requeued),
    )


def check_sqlite_path(location: StoreLocation, *, create: bool) -> None:
    """Refuse a SQLite path that is a directory or missing (unless creating it), before
    SQLite turns either into a cryptic error or a new empty file."""
    path = location.sqlite_path
    if path is None:
        return
    if path.is_dir():
        raise StateStoreError(
            location.shown,
            "is a directory, not a state file",
            hint=f"point CRMBRIDGE_STATE_URL at a file, e.g. sqlite:///{path / 'crmbridge.db'}",
        )
    if path.exists():
        return
    if not create:
        raise _missing(location, DEFAULT_PIPELINE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateStoreError(
            location.shown,
            f"cannot create its directory ({exc.strerror})",
            hint="create the directory and give the user crmbridge runs as write access to it",
        ) from None


def _missing(location: StoreLocation, pipeline: str) -> StateStoreMissingError:
    path = location.sqlite_path
    if path is not None and not path.exists():
        where = f"no state store at {location.shown} (current directory {os.getcwd()})"
    elif path is not None:
        where = f"{location.shown} holds no state store for pipeline {pipeline!r}"
    else:
        where = f"no state store for pipeline {pipeline!r} in {location.shown}"
    return StateStoreMissingError(
        ConfigProblem(
            Location(STATE_URL_SETTING),
            where,
            hint="if crmbridge ran before, point CRMBRIDGE_STATE_URL (or --state-url) at the "
            "store it wrote (a relative sqlite:/// path is relative to the current directory; "
            "sqlite:////abs/path.db is absolute); to start a new store, where every contact is "
            "judged and pushed again, run `crmbridge state init`",
        )
    )
