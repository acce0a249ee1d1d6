"""Backfill benchmark: one full sync pass over a seeded portal, then an idle second pass.

For each ``--contacts N`` three measurements run, each in a fresh child process (RSS, the heap
and module state never carry over from one run to the next). Every run seeds a portal with
``seed_portal(count=N, seed=…, tie_groups=…)``, serves both simulators on loopback (no rate
limits, ``search_index_lag_ms=0``), wires crmbridge with ``crmbridge.bootstrap.build_app`` and a
state file in a temp dir, and uses the real clock (seeded contacts are at least 3 minutes old,
so the pass's ``until_ms`` lies after all of them).

``timed``
    Simulators in-process, no tracing. Wall time of pass 1, contacts/s, the exact HubSpot search
    and Salesforce calls (simulator ``CallLog`` and ``PassSummary``) against the ideal minimum,
    the time spent inside the simulators' request handlers, the state file's size, RSS; then
    pass 2, which must push nothing.
``memory``
    Simulators in-process, ``tracemalloc`` (1 frame): a snapshot before pass 1 (the seeded
    portal is the baseline), the peak during the pass, and a snapshot after it grouped by file.
    The peak above the baseline is everything the pass adds: the pipeline's working set, the
    Salesforce org filling up and the simulators' per-request work.
``isolated``
    Simulators in a separate process, ``tracemalloc`` in crmbridge's process only: the peak above
    the baseline here is the pipeline's own peak (crmbridge and the client libraries it drives),
    with snapshots sampled during the pass grouped by file. ``memory`` minus ``isolated`` is the
    simulators' share.

Results: a table on stdout, ``bench/results/backfill-<date>.json`` and
``bench/results/backfill-latest.md``. See ``bench/README.md``.

Usage::

    .venv/bin/python bench/backfill.py --contacts 10000 --contacts 50000
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr

from crmbridge.bootstrap import App, build_app
from crmbridge.logs import configure_logging
from crmbridge.model import PassSummary
from crmbridge.ports import RejectFilter
from crmbridge.sandbox._server import Request, Response
from crmbridge.sandbox.hubspot import HubSpotPortal, HubSpotSimulator
from crmbridge.sandbox.salesforce import SalesforceOrg, SalesforceSimulator
from crmbridge.sandbox.seed import seed_portal
from crmbridge.settings import HubSpotSettings, SalesforceSettings, Settings
from crmbridge.state import open_store

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
MAPPINGS = REPO / "mappings"
RESULTS_DIR = BENCH_DIR / "results"

DEFAULT_SIZES = (10_000, 25_000, 50_000)
DEFAULT_SEED = 11
#: Two ties larger than a 200-row page (one an exact multiple of it) and a small one.
DEFAULT_TIES = (1000, 450, 40)
PAGE = 200  # HubSpot search page and Salesforce Collections batch, both at their maximum
PRODUCTION_SEARCH_PER_S = 4.0  # the shipped CRMBRIDGE_HUBSPOT__SEARCH_PER_S
#: The bench turns search pacing off: ``SearchPacer`` sleeps for real (not via the injected
#: sleeper), and 4/s would make the wall time a measure of the pacer.
UNPACED_SEARCH_PER_S = 1_000_000.0

SEARCH_LABEL = "POST /crm/v3/objects/contacts/search"
UPSERT_LABEL = "PATCH /composite/sobjects/Lead/{extField}"
DESCRIBE_LABEL = "GET /sobjects/Lead/describe"
SANDBOX_PART = "/crmbridge/sandbox/"
#: 1 frame keeps tracing affordable when the simulators run in the traced process (their
#: per-search work allocates a lot); the isolated run traces crmbridge's process only.
MEMORY_FRAMES = 1
ISOLATED_FRAMES = 1
SAMPLE_EVERY_S = 1.0
MAX_SAMPLES = 5_000
TOP_FILES = 8
RESULT_MARK = "BENCH-RESULT "
MIB = 1024 * 1024
NA = "n/a"
TRACEMALLOC_FILE = "/tracemalloc.py"


# --- wiring -----------------------------------------------------------------------------------


@dataclass
class Endpoints:
    """Where the simulators listen and how to talk to them."""

    hubspot_url: str
    hubspot_token: str
    salesforce_url: str
    salesforce_token: str
    ca_path: str


def make_app(
    endpoints: Endpoints,
    state_path: Path,
    slept: list[float],
    token_provider: Callable[[], str] | None = None,
) -> App:
    settings = Settings(
        hubspot=HubSpotSettings(
            base_url=endpoints.hubspot_url,
            access_token=SecretStr(endpoints.hubspot_token),
            search_per_s=UNPACED_SEARCH_PER_S,
        ),
        salesforce=SalesforceSettings(
            instance_url=endpoints.salesforce_url,
            access_token=SecretStr(endpoints.salesforce_token),
            ca_bundle=Path(endpoints.ca_path),
        ),
        state_url=f"sqlite:///{state_path}",
        mappings_dir=MAPPINGS,
    )
    if not state_path.exists():
        open_store(settings.state_url, create=True).close()  # as `crmbridge state init`
    return build_app(
        settings,
        sleep=slept.append,  # retries only: nothing should sleep in a clean run
        clock=time.time,  # until_ms = now - 60 s: after every seeded contact (>= 3 min old)
        token_provider=token_provider,
    )


class HandlerStats:
    """Time spent inside a simulator's request handler, and what went over the wire."""

    def __init__(self) -> None:
        self.busy_s = 0.0
        self.requests = 0
        self.rows = 0  # contacts returned by search / leads sent in upserts
        self._lock = threading.Lock()

    def add(self, seconds: float, rows: int) -> None:
        with self._lock:
            self.busy_s += seconds
            self.requests += 1
            self.rows += rows


def _encoded(response: Response) -> Response:
    """The same answer with its body already encoded (so encoding falls in the timed span)."""
    return Response(response.status, response.encoded(), response.headers, response.content_type)


class TimedHubSpot(HubSpotSimulator):
    """The HubSpot simulator with a timed request handler; counts contacts returned by search."""

    stats = HandlerStats()  # replaced per instance in ``simulators``

    def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        response = super()._handle(request)
        rows = 0
        if request.path.endswith("/search") and isinstance(response.body, dict):
            rows = len(response.body.get("results") or ())
        encoded = _encoded(response)
        self.stats.add(time.perf_counter() - started, rows)
        return encoded


class TimedSalesforce(SalesforceSimulator):
    """The Salesforce simulator with a timed request handler; counts leads sent in upserts."""

    stats = HandlerStats()  # replaced per instance in ``simulators``

    def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        response = super()._handle(request)
        rows = 0
        if request.method == "PATCH" and "/composite/sobjects/" in request.path:
            with contextlib.suppress(ValueError):
                body = request.json()
                rows = len(body.get("records") or ()) if isinstance(body, dict) else 0
        encoded = _encoded(response)
        self.stats.add(time.perf_counter() - started, rows)
        return encoded


@dataclass
class Simulators:
    portal: HubSpotPortal
    hubspot: TimedHubSpot
    salesforce: TimedSalesforce
    archived: int
    seed_s: float

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            self.hubspot.base_url,
            self.hubspot.access_token,
            self.salesforce.url,
            self.salesforce.access_token,
            self.salesforce.ca_path,
        )


@contextlib.contextmanager
def simulators(contacts: int, seed: int, ties: Sequence[int], tmp: Path) -> Iterator[Simulators]:
    """A portal seeded on the real clock, an empty org, both served on loopback."""
    portal = HubSpotPortal(clock_ms=lambda: time.time_ns() // 1_000_000)
    started = time.perf_counter()
    ids = seed_portal(portal, count=contacts, seed=seed, tie_groups=list(ties))
    seed_s = time.perf_counter() - started
    archived = sum(1 for cid in ids if (portal.get(cid) or {}).get("archived"))
    hubspot = TimedHubSpot(portal, search_index_lag_ms=0)
    hubspot.stats = HandlerStats()
    salesforce = TimedSalesforce(SalesforceOrg(), ca_dir=tmp / "ca")
    salesforce.stats = HandlerStats()
    hubspot.start()
    salesforce.start()
    try:
        yield Simulators(portal, hubspot, salesforce, archived, seed_s)
    finally:
        hubspot.stop()
        salesforce.stop()


def state_bytes(path: Path) -> int:
    return sum(
        p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )


def rss_mib(field_name: str = "VmRSS") -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc (Linux); else ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- the timed run ----------------------------------------------------------------------------


@dataclass
class TimedRun:
    contacts: int
    seeded_archived: int
    seed_s: float
    pulled: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejected_at_salesforce: int
    parked: int
    stopped_early: str | None
    wall_s: float
    contacts_per_s: float
    hubspot_search_calls: int
    hubspot_calls_summary: int
    hubspot_rows_returned: int
    ideal_search_calls: int
    salesforce_calls: int
    salesforce_calls_summary: int
    describe_calls: int
    upsert_calls: int
    leads_sent: int
    ideal_upsert_calls: int
    ideal_salesforce_calls: int
    hubspot_handler_s: float
    salesforce_handler_s: float
    client_side_s: float
    production_search_floor_s: float
    state_file_bytes: int
    state_bytes_per_contact: float
    rss_before_pass_mib: float
    peak_rss_mib: float
    slept_s: float
    pass2_wall_s: float
    pass2_pulled: int
    pass2_search_calls: int
    pass2_salesforce_calls: int
    pass2_upsert_calls: int
    pass2_pushed: int


def _pushed(summary: PassSummary, rejected_at_salesforce: int) -> int:
    """Leads the pass had to send: created, updated, parked and refused by Salesforce."""
    return summary.created + summary.updated + summary.parked + rejected_at_salesforce


def timed_run(contacts: int, seed: int, ties: Sequence[int]) -> TimedRun:
    with (
        tempfile.TemporaryDirectory(prefix="crmbridge-bench-") as tmp,
        simulators(contacts, seed, ties, Path(tmp)) as sims,
    ):
        state_path = Path(tmp) / "state.db"
        slept: list[float] = []
        app = make_app(sims.endpoints, state_path, slept, sims.salesforce.issue_token)
        try:
            hs, sf = sims.hubspot, sims.salesforce
            gc.collect()
            rss_before = rss_mib()
            started = time.perf_counter()
            first = app.pipeline.run_pass()
            wall = time.perf_counter() - started
            searches = hs.calls.count(SEARCH_LABEL)
            upserts = sf.calls.count(UPSERT_LABEL)
            sf_calls = sf.calls.count()
            rows_returned, leads_sent = hs.stats.rows, sf.stats.rows
            hs_busy, sf_busy = hs.stats.busy_s, sf.stats.busy_s
            at_salesforce = app.store.count_rejects(RejectFilter(stage="salesforce"))
            size = state_bytes(state_path)

            started = time.perf_counter()
            second = app.pipeline.run_pass()
            wall2 = time.perf_counter() - started
        finally:
            app.close()
        pushed = _pushed(first, at_salesforce)
        return TimedRun(
            contacts=contacts,
            seeded_archived=sims.archived,
            seed_s=round(sims.seed_s, 3),
            pulled=first.pulled,
            created=first.created,
            updated=first.updated,
            unchanged=first.unchanged,
            rejected=first.rejected,
            rejected_at_salesforce=at_salesforce,
            parked=first.parked,
            stopped_early=first.stopped_early,
            wall_s=round(wall, 3),
            contacts_per_s=round(first.pulled / wall, 1) if wall else 0.0,
            hubspot_search_calls=searches,
            hubspot_calls_summary=first.hubspot_calls,
            hubspot_rows_returned=rows_returned,
            ideal_search_calls=math.ceil(first.pulled / PAGE),
            salesforce_calls=sf_calls,
            salesforce_calls_summary=first.salesforce_calls,
            describe_calls=sf.calls.count(DESCRIBE_LABEL),
            upsert_calls=upserts,
            leads_sent=leads_sent,
            ideal_upsert_calls=math.ceil(pushed / PAGE),
            ideal_salesforce_calls=1 + math.ceil(pushed / PAGE),
            hubspot_handler_s=round(hs_busy, 3),
            salesforce_handler_s=round(sf_busy, 3),
            client_side_s=round(wall - hs_busy - sf_busy, 3),
            production_search_floor_s=round(searches / PRODUCTION_SEARCH_PER_S, 1),
            state_file_bytes=size,
            state_bytes_per_contact=round(size / first.pulled, 1) if first.pulled else 0.0,
            rss_before_pass_mib=rss_before,
            peak_rss_mib=rss_mib("VmHWM"),
            slept_s=round(sum(slept), 3),
            pass2_wall_s=round(wall2, 3),
            pass2_pulled=second.pulled,
            pass2_search_calls=hs.calls.count(SEARCH_LABEL) - searches,
            pass2_salesforce_calls=sf.calls.count() - sf_calls,
            pass2_upsert_calls=sf.calls.count(UPSERT_LABEL) - upserts,
            pass2_pushed=second.created + second.updated,
        )


# --- tracemalloc helpers ----------------------------------------------------------------------


@dataclass
class FileStat:
    file: str
    kib: float
    blocks: int


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def growth_by_file(
    after: tracemalloc.Snapshot, before: tracemalloc.Snapshot, limit: int = TOP_FILES
) -> list[FileStat]:
    """The files whose live allocations grew most between two snapshots."""
    diff = [
        s
        for s in after.compare_to(before, "filename")
        if not str(s.traceback[0].filename).endswith(TRACEMALLOC_FILE)  # the bench's own work
    ]
    return [
        FileStat(_short(str(s.traceback[0].filename)), round(s.size_diff / 1024, 1), s.count_diff)
        for s in diff[:limit]
    ]


def sandbox_growth(after: tracemalloc.Snapshot, before: tracemalloc.Snapshot) -> int:
    """Growth of blocks allocated by code in ``crmbridge/sandbox/`` (the simulators' files)."""
    return sum(
        s.size_diff
        for s in after.compare_to(before, "filename")
        if SANDBOX_PART in str(s.traceback[0].filename)
    )


def _mib(value: float) -> float:
    return round(value / MIB, 2)


class PeakTracker:
    """The traced peak over a span in which snapshots are taken (their memory never counts)."""

    def __init__(self) -> None:
        self.peak = 0

    def note(self) -> None:
        self.peak = max(self.peak, tracemalloc.get_traced_memory()[1])

    def snapshot(self) -> tracemalloc.Snapshot:
        self.note()
        return tracemalloc.take_snapshot()

    def resume(self) -> None:
        """Call once a snapshot and what was built from it are released."""
        tracemalloc.reset_peak()


# --- the memory run (simulators in-process) ---------------------------------------------------


@dataclass
class MemoryRun:
    contacts: int
    pulled: int
    wall_s_traced: float
    baseline_mib: float
    pass_peak_mib: float
    peak_above_baseline_mib: float
    kept_after_pass_mib: float
    kept_in_sandbox_files_mib: float
    top_kept_files: list[FileStat] = field(default_factory=list)


def memory_run(contacts: int, seed: int, ties: Sequence[int]) -> MemoryRun:
    tracemalloc.start(MEMORY_FRAMES)
    with (
        tempfile.TemporaryDirectory(prefix="crmbridge-bench-") as tmp,
        simulators(contacts, seed, ties, Path(tmp)) as sims,
    ):
        slept: list[float] = []
        app = make_app(sims.endpoints, Path(tmp) / "state.db", slept, sims.salesforce.issue_token)
        try:
            gc.collect()
            tracker = PeakTracker()
            before = tracker.snapshot()
            baseline = tracemalloc.get_traced_memory()[0]
            tracker.resume()
            started = time.perf_counter()
            summary = app.pipeline.run_pass()
            wall = time.perf_counter() - started
            tracker.note()
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - baseline
            after = tracemalloc.take_snapshot()
            result = MemoryRun(
                contacts=contacts,
                pulled=summary.pulled,
                wall_s_traced=round(wall, 2),
                baseline_mib=_mib(baseline),
                pass_peak_mib=_mib(tracker.peak),
                peak_above_baseline_mib=_mib(tracker.peak - baseline),
                kept_after_pass_mib=_mib(kept),
                kept_in_sandbox_files_mib=_mib(sandbox_growth(after, before)),
                top_kept_files=growth_by_file(after, before),
            )
        finally:
            app.close()
    tracemalloc.stop()
    return result


# --- the isolated run (simulators in their own process) ---------------------------------------


@dataclass
class IsolatedRun:
    contacts: int
    pulled: int
    created: int
    rejected: int
    hubspot_calls: int
    salesforce_calls: int
    wall_s_traced: float
    baseline_mib: float
    pass_peak_mib: float
    peak_above_baseline_mib: float
    kept_after_pass_mib: float
    samples_mib: list[float]
    top_files_at_largest_sample: list[FileStat] = field(default_factory=list)
    top_kept_files: list[FileStat] = field(default_factory=list)
    simulator_process_peak_rss_mib: float = 0.0
    pipeline_process_peak_rss_mib: float = 0.0


class Sampler(threading.Thread):
    """Snapshots of crmbridge's process every ``SAMPLE_EVERY_S`` during the pass."""

    def __init__(self, tracker: PeakTracker, baseline: tracemalloc.Snapshot, base: int) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.tracker = tracker
        self.baseline = baseline
        self.base = base
        self.done = threading.Event()
        self.samples: list[int] = []
        self.top_at_max: list[FileStat] = []

    def run(self) -> None:
        for _ in range(MAX_SAMPLES):
            if self.done.wait(SAMPLE_EVERY_S):
                return
            live = tracemalloc.get_traced_memory()[0] - self.base
            snapshot = self.tracker.snapshot()
            if not self.samples or live > max(self.samples):
                self.top_at_max = growth_by_file(snapshot, self.baseline)
            self.samples.append(live)
            del snapshot
            self.tracker.resume()


def _read_result(stream: IO[str]) -> Any:
    """The next ``RESULT_MARK`` line a child writes (at most 1,000 other lines skipped)."""
    for _ in range(1_000):
        line = stream.readline()
        if not line:
            break
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise RuntimeError("the simulator process ended without a result")


def serve_simulators(contacts: int, seed: int, ties: Sequence[int]) -> None:
    """Child process of the isolated run: serve until stdin says ``stop`` (or closes)."""
    with (
        tempfile.TemporaryDirectory(prefix="crmbridge-bench-sims-") as tmp,
        simulators(contacts, seed, ties, Path(tmp)) as sims,
    ):
        print(RESULT_MARK + json.dumps(asdict(sims.endpoints)), flush=True)
        for line in sys.stdin:  # ends at EOF
            if line.strip() == "stop":
                break
        report = {
            "hubspot": sims.hubspot.calls.snapshot(),
            "salesforce": sims.salesforce.calls.snapshot(),
            "peak_rss_mib": rss_mib("VmHWM"),
        }
    print(RESULT_MARK + json.dumps(report), flush=True)


def isolated_run(contacts: int, seed: int, ties: Sequence[int], timeout_s: float) -> IsolatedRun:
    command = [*_child_command("simulators", contacts, seed, ties)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env()
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            endpoints = Endpoints(**_read_result(child.stdout))
            result = _traced_pass(contacts, endpoints)
            child.stdin.write("stop\n")
            child.stdin.flush()
            report = _read_result(child.stdout)
            result.simulator_process_peak_rss_mib = float(report["peak_rss_mib"])
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()
            child.wait(timeout=timeout_s)
    return result


def _traced_pass(contacts: int, endpoints: Endpoints) -> IsolatedRun:
    with tempfile.TemporaryDirectory(prefix="crmbridge-bench-") as tmp:
        tracemalloc.start(ISOLATED_FRAMES)
        slept: list[float] = []
        app = make_app(endpoints, Path(tmp) / "state.db", slept)
        try:
            gc.collect()
            tracker = PeakTracker()
            before = tracker.snapshot()
            baseline = tracemalloc.get_traced_memory()[0]
            sampler = Sampler(tracker, before, baseline)
            tracker.resume()
            sampler.start()
            started = time.perf_counter()
            summary = app.pipeline.run_pass()
            wall = time.perf_counter() - started
            sampler.done.set()
            sampler.join(timeout=60)
            tracker.note()
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - baseline
            after = tracemalloc.take_snapshot()
            result = IsolatedRun(
                contacts=contacts,
                pulled=summary.pulled,
                created=summary.created,
                rejected=summary.rejected,
                hubspot_calls=summary.hubspot_calls,
                salesforce_calls=summary.salesforce_calls,
                wall_s_traced=round(wall, 2),
                baseline_mib=_mib(baseline),
                pass_peak_mib=_mib(tracker.peak),
                peak_above_baseline_mib=_mib(tracker.peak - baseline),
                kept_after_pass_mib=_mib(kept),
                samples_mib=[_mib(v) for v in sampler.samples],
                top_files_at_largest_sample=sampler.top_at_max,
                top_kept_files=growth_by_file(after, before),
                pipeline_process_peak_rss_mib=rss_mib("VmHWM"),
            )
        finally:
            app.close()
            tracemalloc.stop()
    return result


# --- child processes --------------------------------------------------------------------------


def _child_command(mode: str, contacts: int, seed: int, ties: Sequence[int]) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        mode,
        "--contacts",
        str(contacts),
        "--seed",
        str(seed),
        "--ties",
        ",".join(str(t) for t in ties),
    ]


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONHASHSEED": "0"}


def worker(mode: str, contacts: int, seed: int, ties: Sequence[int], timeout_s: float) -> None:
    configure_logging("console", "WARNING", stream=sys.stderr)
    if mode == "simulators":
        serve_simulators(contacts, seed, ties)
        return
    run: TimedRun | MemoryRun | IsolatedRun
    if mode == "timed":
        run = timed_run(contacts, seed, ties)
    elif mode == "memory":
        run = memory_run(contacts, seed, ties)
    else:
        run = isolated_run(contacts, seed, ties, timeout_s)
    print(RESULT_MARK + json.dumps(asdict(run)), flush=True)


def run_child(mode: str, contacts: int, seed: int, ties: Sequence[int], timeout_s: float) -> Any:
    command = [*_child_command(mode, contacts, seed, ties), "--timeout", str(timeout_s)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s, env=_child_env(), check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{mode} run for {contacts} contacts failed (exit {done.returncode})")
    if done.stderr.strip():
        sys.stderr.write(f"[{mode} {contacts}] {done.stderr[-2000:]}")
    return json.loads(lines[-1][len(RESULT_MARK) :])


def _file_stats(raw: list[dict[str, Any]]) -> list[FileStat]:
    return [FileStat(**item) for item in raw]


def load_memory(raw: dict[str, Any]) -> MemoryRun:
    run = MemoryRun(**raw)
    run.top_kept_files = _file_stats(raw["top_kept_files"])
    return run


def load_isolated(raw: dict[str, Any]) -> IsolatedRun:
    run = IsolatedRun(**raw)
    run.top_files_at_largest_sample = _file_stats(raw["top_files_at_largest_sample"])
    run.top_kept_files = _file_stats(raw["top_kept_files"])
    return run


# --- the report -------------------------------------------------------------------------------


@dataclass
class SizeResult:
    timed: TimedRun
    memory: MemoryRun | None = None
    isolated: IsolatedRun | None = None


def git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu or platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(pages * page_size / 1024**3, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def flatness(results: Sequence[SizeResult]) -> dict[str, Any]:
    """How the pipeline's own peak (isolated run) and the whole pass peak grow with N."""
    iso = [r.isolated for r in results if r.isolated is not None]
    mem = [r.memory for r in results if r.memory is not None]
    out: dict[str, Any] = {}
    if iso:
        xs = [float(i.contacts) for i in iso]
        own = [i.peak_above_baseline_mib for i in iso]
        per_contact = slope(xs, own) * MIB
        growth = own[-1] - own[0]
        flat = len(iso) < 2 or growth <= max(1.0, 0.25 * own[0])
        out |= {
            "pipeline_sizes": [i.contacts for i in iso],
            "pipeline_peak_above_baseline_mib": own,
            "pipeline_peak_bytes_per_contact": round(per_contact, 1),
            "pipeline_kept_after_pass_mib": [i.kept_after_pass_mib for i in iso],
            "pipeline_flat": flat,
            "verdict": (
                f"pipeline's own peak {'is flat' if flat else 'GROWS with N'}: {own[0]} MiB at "
                f"{iso[0].contacts:,} → {own[-1]} MiB at {iso[-1].contacts:,} contacts "
                f"(slope ~{round(per_contact)} B/contact)"
            ),
        }
    if mem:
        xs = [float(m.contacts) for m in mem]
        peak = [m.peak_above_baseline_mib for m in mem]
        out |= {
            "whole_process_sizes": [m.contacts for m in mem],
            "whole_pass_peak_above_baseline_mib": peak,
            "whole_pass_peak_bytes_per_contact": round(slope(xs, peak) * MIB, 1),
            "whole_pass_kept_after_pass_mib": [m.kept_after_pass_mib for m in mem],
            "kept_in_sandbox_files_mib": [m.kept_in_sandbox_files_mib for m in mem],
        }
        if "verdict" in out and len(mem) > 1:
            out["verdict"] += (
                f"; the whole pass (simulators in the same process) adds {peak[0]} → "
                f"{peak[-1]} MiB above the seeded portal at {mem[0].contacts:,} → "
                f"{mem[-1].contacts:,} contacts, most of it the Salesforce org filling up"
            )
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return [line(cells[0]), rule, *(line(r) for r in cells[1:])]


def timed_table(runs: Sequence[TimedRun]) -> list[str]:
    return table(
        [
            "contacts",
            "pulled",
            "created",
            "rejected",
            "pass 1 s",
            "contacts/s",
            "searches (ideal)",
            "SF calls (ideal)",
            "state MiB",
            "pass 2: searches / SF calls / pushed",
        ],
        [
            [
                f"{r.contacts:,}",
                f"{r.pulled:,}",
                f"{r.created:,}",
                f"{r.rejected:,}",
                f"{r.wall_s:.1f}",
                f"{r.contacts_per_s:,.0f}",
                f"{r.hubspot_search_calls} ({r.ideal_search_calls})",
                f"{r.salesforce_calls} ({r.ideal_salesforce_calls})",
                f"{r.state_file_bytes / MIB:.1f}",
                f"{r.pass2_search_calls} / {r.pass2_salesforce_calls} / {r.pass2_pushed}",
            ]
            for r in runs
        ],
    )


def time_split_table(runs: Sequence[TimedRun]) -> list[str]:
    return table(
        [
            "contacts",
            "pass 1 s",
            "in HubSpot sim s",
            "in Salesforce sim s",
            "rest (crmbridge, clients, HTTP) s",
            "contacts/s without simulators",
            "rows read by search",
            "leads sent",
            "at 4 searches/s ≥ s",
        ],
        [
            [
                f"{r.contacts:,}",
                f"{r.wall_s:.1f}",
                f"{r.hubspot_handler_s:.1f}",
                f"{r.salesforce_handler_s:.1f}",
                f"{r.client_side_s:.1f}",
                f"{r.pulled / r.client_side_s:,.0f}" if r.client_side_s > 0 else NA,
                f"{r.hubspot_rows_returned:,}",
                f"{r.leads_sent:,}",
                f"{r.production_search_floor_s:.0f}",
            ]
            for r in runs
        ],
    )


def memory_table(results: Sequence[SizeResult]) -> list[str]:
    rows: list[list[object]] = []
    for r in results:
        m, i = r.memory, r.isolated
        if m is None and i is None:
            continue
        share = (
            f"{m.peak_above_baseline_mib - i.peak_above_baseline_mib:.1f}"
            if m is not None and i is not None
            else NA
        )
        rows.append(
            [
                f"{r.timed.contacts:,}",
                f"{m.baseline_mib:.1f}" if m else NA,
                f"{m.peak_above_baseline_mib:.1f}" if m else NA,
                f"{m.kept_after_pass_mib:.1f}" if m else NA,
                f"{i.peak_above_baseline_mib:.2f}" if i else NA,
                f"{i.kept_after_pass_mib:.2f}" if i else NA,
                share,
                f"{i.pipeline_process_peak_rss_mib:.0f}" if i else NA,
                f"{i.simulator_process_peak_rss_mib:.0f}" if i else NA,
                f"{r.timed.rss_before_pass_mib:.0f} → {r.timed.peak_rss_mib:.0f}",
            ]
        )
    return table(
        [
            "contacts",
            "seeded baseline MiB",
            "pass peak above baseline MiB (all)",
            "kept after pass MiB (all)",
            "pipeline's own peak MiB",
            "pipeline kept MiB",
            "simulators' share of peak MiB",
            "crmbridge process peak RSS MiB",
            "simulator process peak RSS MiB",
            "one process: RSS before → peak MiB",
        ],
        rows,
    )


def checks(runs: Sequence[TimedRun]) -> list[str]:
    """Things that must hold in every run; a broken one is printed and stored."""
    problems: list[str] = []
    for r in runs:
        tag = f"{r.contacts:,}:"
        live = r.contacts - r.seeded_archived
        if r.stopped_early:
            problems.append(f"{tag} pass 1 stopped early: {r.stopped_early}")
        if r.pulled != live:
            problems.append(f"{tag} pulled {r.pulled:,}, portal has {live:,} live contacts")
        if r.hubspot_calls_summary != r.hubspot_search_calls:
            problems.append(f"{tag} PassSummary HubSpot calls {r.hubspot_calls_summary} ≠ CallLog")
        if r.salesforce_calls_summary != r.salesforce_calls:
            problems.append(f"{tag} PassSummary SF calls {r.salesforce_calls_summary} ≠ CallLog")
        if r.leads_sent != r.created + r.updated + r.parked + r.rejected_at_salesforce:
            problems.append(f"{tag} {r.leads_sent:,} leads sent, outcomes disagree")
        if r.pass2_upsert_calls or r.pass2_pushed:
            problems.append(f"{tag} pass 2 pushed {r.pass2_pushed} in {r.pass2_upsert_calls} calls")
        if r.slept_s:
            problems.append(f"{tag} retries slept {r.slept_s} s (injected sleeper)")
    return problems


def markdown(report: dict[str, Any], results: Sequence[SizeResult]) -> str:
    m = report["machine"]
    timed = [r.timed for r in results]
    dirty = report["dirty"]
    lines = [
        "# Backfill benchmark: latest results",
        "",
        f"- date: {report['date']}, commit `{report['commit']}`"
        + (f" (uncommitted changes in {len(dirty)} file(s) under src/)" if dirty else "")
        + (
            f" (HEAD moved to `{report['commit_at_end']}` during the run)"
            if report["commit_at_end"] != report["commit"]
            else ""
        ),
        f"- machine: {m['platform']}, {m['cpu']}, {m['cpu_count']} CPUs, {m['memory_gib']} GiB,"
        f" {m['implementation']} {m['python']}",
        f"- portal: `seed_portal(count=N, seed={report['config']['seed']},"
        f" tie_groups={report['config']['tie_groups']})` (~1 % archived); simulators on loopback,"
        " no rate limits, no index lag, search pacing off",
        "",
        "## Pass 1 (backfill) and pass 2 (nothing new)",
        "",
        *timed_table(timed),
        "",
        "Ideal: searches ⌈pulled/200⌉; Salesforce 1 describe + ⌈leads sent/200⌉ upserts.",
        "",
        "## Where the time of pass 1 goes",
        "",
        *time_split_table(timed),
        "",
    ]
    if any(r.memory or r.isolated for r in results):
        lines += ["## Memory (tracemalloc; RSS from the timed run)", "", *memory_table(results), ""]
        verdict = report["memory_flatness"].get("verdict")
        if verdict:
            lines += [f"**{verdict}**", ""]
    if report["problems"]:
        lines += ["## Problems", "", *(f"- {p}" for p in report["problems"]), ""]
    lines += ["Produced by `bench/backfill.py`; how to read it: `bench/README.md`.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    parser.add_argument("--contacts", type=int, action="append", help="portal size (repeatable)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--ties",
        default=",".join(str(t) for t in DEFAULT_TIES),
        help="tie group sizes, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--no-memory", action="store_true", help="timed runs only")
    parser.add_argument(
        "--memory-max",
        type=int,
        default=None,
        help="largest size for the slow in-process memory run (the isolated run always runs)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--worker", choices=("timed", "memory", "isolated", "simulators"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    sizes: list[int] = sorted(set(args.contacts or DEFAULT_SIZES))
    ties = [int(t) for t in str(args.ties).split(",") if t.strip()]
    if args.worker:
        worker(args.worker, sizes[0], args.seed, ties, args.timeout)
        return 0

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    results: list[SizeResult] = []
    for size in sizes:
        print(f"-- {size:,} contacts: timed run", file=sys.stderr, flush=True)
        result = SizeResult(TimedRun(**run_child("timed", size, args.seed, ties, args.timeout)))
        results.append(result)
        if args.no_memory:
            continue
        print(f"-- {size:,} contacts: isolated memory run", file=sys.stderr, flush=True)
        result.isolated = load_isolated(run_child("isolated", size, args.seed, ties, args.timeout))
        if args.memory_max is None or size <= args.memory_max:
            print(f"-- {size:,} contacts: in-process memory run", file=sys.stderr, flush=True)
            result.memory = load_memory(run_child("memory", size, args.seed, ties, args.timeout))

    now = datetime.now(UTC)
    report: dict[str, Any] = {
        "benchmark": "backfill",
        "date": now.isoformat(timespec="seconds"),
        "commit": commit,
        "commit_at_end": git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": git("diff", "--name-only", "HEAD", "--", "src", "mappings").splitlines(),
        "machine": machine(),
        "config": {
            "seed": args.seed,
            "tie_groups": ties,
            "page_size": PAGE,
            "batch_size": PAGE,
            "search_per_s": UNPACED_SEARCH_PER_S,
            "index_lag_s": 60.0,
            "search_index_lag_ms": 0,
            "tracemalloc_frames": {"memory": MEMORY_FRAMES, "isolated": ISOLATED_FRAMES},
        },
        "results": [asdict(r) for r in results],
        "memory_flatness": flatness(results),
        "problems": checks([r.timed for r in results]),
    }
    text = markdown(report, results)
    print(text)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        json_path = args.out / f"backfill-{now:%Y-%m-%d}.json"
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        (args.out / "backfill-latest.md").write_text(text)
        print(f"wrote {json_path} and {args.out / 'backfill-latest.md'}", file=sys.stderr)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
