"""What-if benchmark: replay a proposed rule set over 100,000 stored decisions, on SQLite and
PostgreSQL. The target: under 10 s on a 2-core machine.

Fills a new store with ``--decisions N`` decisions (default 100,000) made the way a pass makes
them: contacts from the simulator's seed generator (realistic values, every pulled property
present, about a third meeting BANT), judged by the shipped configuration against the reference
describe, committed page by page, and the describe kept as a pass keeps it; then ``ANALYZE``,
as autovacuum does within a minute of a bulk load. Then it times what
``crmbridge whatif`` does: stream the latest decision of every contact from the store and judge
each again under a proposal (a looser budget and a stricter timeline, which flips leads both
ways), ``--repeat`` times; the table shows the median and the split between reading the store
and judging.

Usage::

    .venv/bin/python bench/whatif.py                       # SQLite in a temp dir
    .venv/bin/python bench/whatif.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

With ``--postgres`` a database is created on that server for the run and dropped after it.
Results: a table on stdout and ``bench/results/whatif-latest.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from common import postgres_database, publish
from sqlalchemy import create_engine, text

from crmbridge.configuration import Configuration, load_configuration
from crmbridge.judgement import judge
from crmbridge.model import Cursor, Outcome, SourceContact
from crmbridge.ports import StateStore
from crmbridge.sandbox.seed import generate_contacts
from crmbridge.state import DEFAULT_PIPELINE, open_store
from crmbridge.testing import reference_lead_schema
from crmbridge.whatif import StoreAddress, replay_store

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = REPO / "mappings"
RESULTS = Path(__file__).resolve().parent / "results" / "whatif-latest.md"
PAGE = 2_000
START_MS = 1_790_000_000_000
BASE_PROPERTIES = ("email", "hs_object_id", "lastmodifieddate")
TARGET_S = 10.0


def proposal(tmp: Path) -> Configuration:
    """The shipped rules with a budget over 40,000 (was 50,000) and a timeline under 90 days
    (was 180): some leads newly qualify, more are newly rejected."""
    rules = (MAPPINGS / "qualification.yaml").read_text(encoding="utf-8")
    rules = rules.replace("    value: 50000\n", "    value: 40000\n")
    rules = rules.replace("    value: 180\n", "    value: 90\n")
    rules = rules.replace("version: bant-2026.2", "version: bench-proposal")
    path = tmp / "proposed.yaml"
    path.write_text(rules, encoding="utf-8")
    return load_configuration(MAPPINGS, rules_file=path)


def fill(store: StateStore, count: int) -> float:
    """Judge ``count`` seeded contacts as a pass would and commit them; seconds taken."""
    config = load_configuration(MAPPINGS)
    schema = reference_lead_schema()
    started = time.perf_counter()
    store.save_schema(schema)
    wanted = sorted(config.pulled_properties | set(BASE_PROPERTIES))
    seeds = generate_contacts(count, seed=11, start_ms=START_MS, tie_groups=())
    page = []
    for number, seed in enumerate(seeds):
        contact_id = str(1_000_001 + number)
        props = {name: seed.properties.get(name) for name in wanted}
        props["hs_object_id"] = contact_id
        contact = SourceContact(contact_id, props, seed.modified_at_ms, archived=seed.archived)
        decision = judge(contact, config, schema, None)
        if decision.outcome is Outcome.TO_PUSH:
            decision = replace(decision, outcome=Outcome.CREATED, salesforce_id=f"00Q{number:015d}")
        page.append(decision)
        if len(page) == PAGE:
            store.commit_page("hubspot.contacts", page, Cursor(seed.modified_at_ms, number))
            page = []
    if page:
        store.commit_page("hubspot.contacts", page, None)
    return time.perf_counter() - started


def run(
    name: str, url: str, count: int, repeat: int, config: Configuration, workers: int
) -> list[str]:
    store = open_store(url, create=True)
    try:
        fill_s = fill(store, count)
        # What autovacuum does within a minute of a bulk load (PostgreSQL): without table
        # statistics its generic plan for the range query reads far more than the range.
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        engine.dispose()
        stored = store.latest_schema("Lead")
        assert stored is not None
        address = StoreAddress(url, DEFAULT_PIPELINE)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = replay_store(store, config, stored.schema, address=address, workers=workers)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        verdict = "met" if median < TARGET_S else "MISSED"
        return [
            f"| {name} | {workers} | {result.replayed:,} | {median:.2f} | "
            f"{result.replayed / median:,.0f} | {result.newly_qualified:,} | "
            f"{result.newly_rejected:,} | {fill_s:.0f} | {verdict} |"
        ]
    finally:
        store.close()


def machine() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"CPython {platform.python_version()}, commit `{commit or '?'}`, "
        f"load average at start {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, action="append", help="judging processes (repeatable; 1 and 2)"
    )
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        "# What-if benchmark: latest results",
        "",
        f"- date: {when}",
        f"- {machine()}",
        f"- {args.decisions:,} stored decisions; median of {args.repeat} replays",
        "",
        "| store | workers | replayed | median s | decisions/s | newly qualified |"
        " newly rejected | store filled in s | target < 10 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        config = proposal(Path(tmp))
        for workers in args.workers or [1, 2]:
            url = f"sqlite:///{Path(tmp) / f'bench-{workers}.db'}"
            lines += run("SQLite", url, args.decisions, args.repeat, config, workers)
        if args.postgres:
            for workers in args.workers or [1, 2]:
                with postgres_database(args.postgres) as pg:
                    lines += run("PostgreSQL", pg, args.decisions, args.repeat, config, workers)
    lines += ["", "Produced by `bench/whatif.py`; see `bench/README.md`."]
    publish(lines, RESULTS, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
