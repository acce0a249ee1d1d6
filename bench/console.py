"""Console benchmark: the reviewer console's list and detail pages over 100,000 rejects, on
SQLite and PostgreSQL, answered over HTTP by the real server (waitress) on loopback.

Fills a new store with ``--rejects N`` rejects (default 100,000) spread over lead sources, tiers
and the demo's mix of criteria; 10 % of them dismissed and 1 % escalated (each with its audit
entry); runs ``VACUUM ANALYZE`` on PostgreSQL / ``ANALYZE`` on SQLite (what autovacuum does
within a minute of a bulk load). Then a signed-in reviewer asks, ``--requests`` times each, for:
the queue's first page, a page far down it, the queue filtered by a criterion, by a lead source,
by a status, by free-text searches (a rare and a broad one, one of 2 characters, one that every
reject matches), and the detail page of a random reject. Each row shows the
median and the 95th percentile of the whole request as the client sees it (SQL, template,
HTTP), after ``--warmup`` requests of the same kind.

Usage::

    .venv/bin/python bench/console.py                       # SQLite in a temp dir
    .venv/bin/python bench/console.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

Results: a table on stdout and ``bench/results/console-latest.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import requests
from common import postgres_database, publish
from sqlalchemy import text

from crmbridge.console import console_app
from crmbridge.model import Cursor, Decision, Outcome, Reason, RejectStage
from crmbridge.ports import RejectFilter
from crmbridge.review import Action, ReviewChange
from crmbridge.settings import ConsoleSettings
from crmbridge.state import open_store
from crmbridge.state.store import SQLStateStore
from crmbridge.users import hash_password
from crmbridge.web.server import WebServer

RESULTS = Path(__file__).resolve().parent / "results" / "console-latest.md"
PAGE = 2_000
GOAL_P95_MS = 150.0
PASSWORD = "bench password 1"
CRITERIA = (("need", 0.5), ("authority", 0.25), ("budget", 0.22), ("timeline", 0.2))
SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "DIRECT_TRAFFIC",
    "EMAIL_MARKETING",
    "REFERRALS",
    "OFFLINE",
    "SOCIAL_MEDIA",
    "PAID_SOCIAL",
)


def reject(n: int, rng: random.Random) -> Decision:
    reasons = [
        Reason(name, f"{name}: not met ({n})", code="RULE")
        for name, share in CRITERIA
        if rng.random() < share
    ] or [Reason("need", "need: missing", code="RULE")]
    source = SOURCES[rng.randrange(len(SOURCES))]
    return Decision(
        contact_id=str(100_000 + n),
        modified_at_ms=1_700_000_000_000 + n,
        email=f"lead{n}@example.com",
        outcome=Outcome.REJECTED,
        rule_set_version="bench-1",
        qualified=False,
        inputs={
            "budget": str(rng.randint(0, 90_000)),
            "jobtitle": rng.choice(("CEO", "CFO", "Plant Manager", "Engineer", "Intern")),
            "need": "supply chain " * rng.randint(0, 10),
            "hs_analytics_source": source,
        },
        reasons=tuple(reasons),
        stage=RejectStage.QUALIFICATION,
        tier=rng.choice(("A", "B", "C", None)),
        lead_source=source,
    )


def fill(store: SQLStateStore, count: int) -> float:
    """``count`` rejects, then 10 % dismissed and 1 % escalated; seconds taken."""
    rng = random.Random(42)
    started = time.perf_counter()
    for start in range(0, count, PAGE):
        page = [reject(n, rng) for n in range(start, min(count, start + PAGE))]
        store.commit_page("bench", page, Cursor(start, start))
    ids = store.reject_ids(RejectFilter())
    store.change_review(ids[5::10], ReviewChange(Action.DISMISS, "bench", note="no"))
    store.change_review(
        ids[7::100], ReviewChange(Action.ESCALATE, "bench", note="ask", assignee="sales")
    )
    return time.perf_counter() - started


def timed(session: requests.Session, url: str, repeat: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        session.get(url, timeout=30).raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = session.get(url, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def signed_in(base: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy
    page = session.get(f"{base}/console/login", timeout=30).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    answer = session.post(
        f"{base}/console/login",
        data={"name": "rita", "password": PASSWORD, "csrf_token": found.group(1)},
        timeout=30,
    )
    answer.raise_for_status()
    assert "Rejected leads" in answer.text
    return session


def run(name: str, url: str, count: int, repeat: int, warmup: int) -> list[str]:
    store = open_store(url, create=True)
    assert isinstance(store, SQLStateStore)
    server = None
    try:
        fill_s = fill(store, count)
        store.save_user("rita", "reviewer", hash_password(PASSWORD), new=True)
        with store._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))
                conn.commit()
        settings = ConsoleSettings(secure_cookies=False)
        server = WebServer(console_app(store, settings), port=0).start()
        base = server.url
        session = signed_in(base)
        ids = store.reject_ids(RejectFilter(include_resolved=True))
        rng = random.Random(7)
        pages = {
            "queue, page 1": "/console/",
            "queue, page 400 (offset 19,950)": "/console/?page=400",
            "criterion budget": "/console/?criterion=budget",
            "lead source PAID_SOCIAL": "/console/?source=PAID_SOCIAL",
            "status escalated": "/console/?status=escalated",
            "tier A, page 20": "/console/?tier=A&page=20",
            "free text 'lead4242'": "/console/?q=lead4242",
            "free text 'lead1' (broad)": "/console/?q=lead1",
            "free text 'zz' (2 characters: no trigram, a scan)": "/console/?q=zz",
            "free text 'example.com' (every reject)": "/console/?q=example.com",
        }
        lines = [
            f"### {name}: {count:,} rejects, filled in {fill_s:.1f} s",
            "",
            "| page | matches | p50 ms | p95 ms | max ms | p95 < 150 ms |",
            "|---|---:|---:|---:|---:|:---:|",
        ]
        for label, path in pages.items():
            times = timed(session, base + path, repeat, warmup)
            body = session.get(base + path, timeout=30).text
            matches = re.search(r"<b>(\d+)</b> rejects", body)
            lines.append(_row(label, matches.group(1) if matches else "?", times))
        detail_times: list[float] = []
        for _ in range(warmup):
            session.get(f"{base}/console/rejects/{rng.choice(ids)}", timeout=30)
        for _ in range(repeat):
            url_ = f"{base}/console/rejects/{rng.choice(ids)}"
            started = time.perf_counter()
            answer = session.get(url_, timeout=30)
            detail_times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
        lines.append(_row("detail of a random reject", "1", detail_times))
        return [*lines, ""]
    finally:
        if server is not None:
            server.stop()
        store.close()


def _row(label: str, matches: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    ok = "yes" if p95 < GOAL_P95_MS else "**no**"
    return (
        f"| {label} | {matches} | {statistics.median(times):.1f} | {p95:.1f} | "
        f"{ordered[-1]:.1f} | {ok} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rejects", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        "# Console benchmark: latest results",
        "",
        f"- date: {when}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; client and server in one process on loopback",
        f"- {args.requests} requests per page after {args.warmup} warm-up requests",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        lines += run("SQLite", url, args.rejects, args.requests, args.warmup)
    if args.postgres:
        with postgres_database(args.postgres) as url:
            lines += run("PostgreSQL", url, args.rejects, args.requests, args.warmup)
    lines.append("Produced by `bench/console.py`; see `bench/README.md`.")
    publish(lines, RESULTS, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
