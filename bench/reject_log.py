"""Reject-log benchmark: the reviewer's queries on a large reject log, on SQLite and PostgreSQL.

Fills a new store with ``--rejects N`` rejects (default 100,000) whose reasons follow the
demo's mix (most fail ``need``, few fail a rare Salesforce code), half of them resolved, then
times what ``crmbridge rejects list`` and ``status`` ask: the newest open rejects, filtered by
criterion (a common and a rare one) and by error code, their counts, and a page far down the
list. Each query runs ``--repeat`` times after an ``ANALYZE``; the table shows the median. The
query plans show which index answers each one (``EXPLAIN QUERY PLAN`` / ``EXPLAIN``).

Usage::

    .venv/bin/python bench/reject_log.py                       # SQLite in a temp dir
    .venv/bin/python bench/reject_log.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

With ``--postgres`` a database is created on that server for the run and dropped after it.
Results: a table on stdout and ``bench/results/reject-log-latest.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from common import postgres_database, publish
from sqlalchemy import func, select, text

from crmbridge.model import Cursor, Decision, Outcome, Reason, RejectStage
from crmbridge.ports import RejectFilter
from crmbridge.state import open_store
from crmbridge.state.schema import decisions
from crmbridge.state.store import SQLStateStore

RESULTS = Path(__file__).resolve().parent / "results" / "reject-log-latest.md"
PAGE = 2_000
CRITERIA = (("need", 0.5), ("authority", 0.25), ("budget", 0.22), ("timeline", 0.2))
RARE_CODE = "DUPLICATES_DETECTED"


def reject(n: int, rng: random.Random) -> Decision:
    reasons = [
        Reason(name, f"{name}: not met ({n})", code="RULE")
        for name, share in CRITERIA
        if rng.random() < share
    ] or [Reason("need", "need: missing", code="RULE")]
    stage = RejectStage.QUALIFICATION
    if n % 997 == 0:
        reasons = [Reason(f"salesforce.{RARE_CODE}", "Use one of these records?", code=RARE_CODE)]
        stage = RejectStage.SALESFORCE
    return Decision(
        contact_id=str(100_000 + n),
        modified_at_ms=1_700_000_000_000 + n,
        email=f"lead{n}@example.com",
        outcome=Outcome.REJECTED,
        rule_set_version="bench-1",
        qualified=False,
        inputs={"budget": str(rng.randint(0, 90_000)), "need": "x" * rng.randint(0, 200)},
        reasons=tuple(reasons),
        stage=stage,
    )


def fill(store: SQLStateStore, count: int) -> float:
    """Commit ``count`` rejects in pages, then resolve every other one by a sync; seconds."""
    rng = random.Random(42)
    started = time.perf_counter()
    for start in range(0, count, PAGE):
        page = [reject(n, rng) for n in range(start, min(count, start + PAGE))]
        store.commit_page("bench", page, Cursor(start, start))
    for start in range(0, count, PAGE * 2):
        synced = [
            Decision(
                contact_id=str(100_000 + n),
                modified_at_ms=1_800_000_000_000 + n,
                email=None,
                outcome=Outcome.CREATED,
                rule_set_version="bench-1",
                qualified=True,
                inputs={},
                payload={"LastName": "x"},
                payload_hash="h",
                salesforce_id=f"00Q{n:015d}",
            )
            for n in range(start, min(count, start + PAGE))
        ]
        store.commit_page("bench", synced, None)
    return time.perf_counter() - started


QUERIES: dict[str, RejectFilter] = {
    "newest 50 open": RejectFilter(),
    "newest 50, resolved too": RejectFilter(include_resolved=True),
    "criterion need (common)": RejectFilter(criterion="need"),
    "criterion timeline": RejectFilter(criterion="timeline"),
    f"code {RARE_CODE} (rare)": RejectFilter(code=RARE_CODE, include_resolved=True),
    "stage salesforce": RejectFilter(stage="salesforce", include_resolved=True),
    "page at offset 20,000": RejectFilter(offset=20_000, include_resolved=True),
}


def median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def plan(store: SQLStateStore, query: RejectFilter) -> str:
    """The backend's plan for the list query of ``query``, one line."""
    statement = (
        select(decisions.c.id)
        .where(*store._reject_conditions(query))
        .order_by(decisions.c.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    with store._engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        rows = conn.execute(text(prefix + str(compiled))).all()
    lines = [str(row[-1]).strip() for row in rows]
    return " / ".join(line for line in lines if line)


def run(name: str, url: str, count: int, repeat: int) -> list[str]:
    store = open_store(url, create=True)
    assert isinstance(store, SQLStateStore)
    try:
        fill_s = fill(store, count)
        with store._engine.begin() as conn:
            # What autovacuum (PostgreSQL) does within a minute of a bulk load; the planner
            # needs it to join reasons by index. SQLite plans the same without it.
            conn.execute(text("ANALYZE"))
            total = conn.execute(select(func.count()).select_from(decisions)).scalar_one()
        lines = [
            f"### {name}: {count:,} rejects ({total:,} decisions), filled in {fill_s:.1f} s",
            "",
            "| query | list ms | count ms | matches | plan of the list query |",
            "|---|---:|---:|---:|---|",
        ]
        for label, query in QUERIES.items():
            list_ms = median_ms(lambda q=query: store.rejects(q), repeat)
            count_ms = median_ms(lambda q=query: store.count_rejects(q), repeat)
            matches = store.count_rejects(query)
            lines.append(
                f"| {label} | {list_ms:.1f} | {count_ms:.1f} | {matches:,} | {plan(store, query)} |"
            )
        return [*lines, ""]
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rejects", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = ["# Reject-log benchmark: latest results", "", f"- date: {when}", ""]
    with tempfile.TemporaryDirectory() as tmp:
        lines += run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.rejects, args.repeat)
    if args.postgres:
        with postgres_database(args.postgres) as url:
            lines += run("PostgreSQL", url, args.rejects, args.repeat)
    lines.append("Produced by `bench/reject_log.py`; see `bench/README.md`.")
    publish(lines, RESULTS, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
