"""Prometheus metrics of the running daemon, per pipeline (label ``pipeline``).

``SyncMetrics`` owns a ``CollectorRegistry`` of its own (never the library's global one, so
two instances, two tests or an embedding program never clash) and hands out one observer per
pipeline. The observer is fed through the small interfaces of ``crmbridge.observe``: the retry
policies report failed attempts and retries as they happen, and each finished pass reports its
``PassRecord`` (lead counts, API calls as the adapters counted them, headroom, cursor). Nothing
else in crmbridge imports the metrics library.

Every series, with what it means, is listed in README "Running it as a service".
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from crmbridge.observe import RESULTS, PassRecord, error_kind

PREFIX = "crmbridge"
#: Lead outcomes counted by ``crmbridge_leads_total``.
OUTCOMES = ("created", "updated", "unchanged", "skipped", "parked", "rejected")


class SyncMetrics:
    """Every crmbridge series, in one registry of its own; ``pipeline(name)`` observes one."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        r = self.registry
        by_pipeline = ["pipeline"]
        self.pulled = Counter(
            f"{PREFIX}_leads_pulled", "Contacts pulled from HubSpot.", by_pipeline, registry=r
        )
        self.leads = Counter(
            f"{PREFIX}_leads",
            "Pulled contacts by outcome: created, updated, unchanged (not pushed), skipped, "
            "parked (transient failure, retried next pass), rejected.",
            ["pipeline", "outcome"],
            registry=r,
        )
        self.flagged = Counter(
            f"{PREFIX}_leads_flagged",
            "Leads synced with flags (values a reviewer should fix).",
            by_pipeline,
            registry=r,
        )
        self.rejected_by_criterion = Counter(
            f"{PREFIX}_rejects_by_criterion",
            "Failed criteria of rejected leads (a lead counts once under each it failed).",
            ["pipeline", "criterion"],
            registry=r,
        )
        self.failed_by_code = Counter(
            f"{PREFIX}_salesforce_failures",
            "Leads Salesforce refused, by its error code.",
            ["pipeline", "code"],
            registry=r,
        )
        self.api_calls = Counter(
            f"{PREFIX}_api_calls",
            "HTTP requests sent, by system (failed and retried ones included).",
            ["pipeline", "system"],
            registry=r,
        )
        self.api_errors = Counter(
            f"{PREFIX}_api_errors",
            "Failed call attempts, by system and kind (the error code when the system gave one).",
            ["pipeline", "system", "kind"],
            registry=r,
        )
        self.retries = Counter(
            f"{PREFIX}_api_retries",
            "Calls tried again after a wait.",
            ["pipeline", "system"],
            registry=r,
        )
        self.headroom = Gauge(
            f"{PREFIX}_api_headroom",
            "Requests left in an API budget, as the system's headers last said.",
            ["pipeline", "system", "budget"],
            registry=r,
        )
        self.limit = Gauge(
            f"{PREFIX}_api_limit",
            "Size of an API budget, as the system's headers last said.",
            ["pipeline", "system", "budget"],
            registry=r,
        )
        self.passes = Counter(
            f"{PREFIX}_passes", "Passes by result.", ["pipeline", "result"], registry=r
        )
        self.last_duration = Gauge(
            f"{PREFIX}_last_pass_duration_seconds",
            "How long the last pass took.",
            by_pipeline,
            registry=r,
        )
        self.last_finished = Gauge(
            f"{PREFIX}_last_pass_finished_timestamp_seconds",
            "When the last pass ended (Unix time).",
            by_pipeline,
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_pass_success",
            "1 when the last pass did its job (ok, or ended by a stop request), else 0.",
            by_pipeline,
            registry=r,
        )
        self.last_result = Gauge(
            f"{PREFIX}_last_pass_result",
            "1 for the result the last pass ended with, 0 for the others.",
            ["pipeline", "result"],
            registry=r,
        )
        self.running = Gauge(
            f"{PREFIX}_pass_running", "1 while a pass runs.", by_pipeline, registry=r
        )
        self.lag = Gauge(
            f"{PREFIX}_sync_lag_seconds",
            "Now minus the cursor (the lastmodifieddate of the newest contact with an outcome); "
            "at least the index lag margin. NaN before the first page.",
            by_pipeline,
            registry=r,
        )

        self.config_reloads = Counter(
            f"{PREFIX}_config_reloads",
            "Edits of the mapping files seen by the running daemon, by result: applied, "
            "refused (invalid: the last good configuration keeps running), deferred (waits "
            "for the next pass).",
            ["pipeline", "result"],
            registry=r,
        )
        self.rules_version = Gauge(
            f"{PREFIX}_rules_version_info",
            "1 for the rule-set version judging leads now (label version).",
            ["pipeline", "version"],
            registry=r,
        )

    def pipeline(self, name: str) -> PipelineMetrics:
        """The observer feeding the series of pipeline ``name`` (its series appear at once)."""
        return PipelineMetrics(self, name)


class PipelineMetrics:
    """One pipeline's ``CallObserver`` and ``PassObserver``, writing ``SyncMetrics``."""

    def __init__(self, metrics: SyncMetrics, name: str) -> None:
        self._m = metrics
        self.name = name
        self._lock = threading.Lock()
        self._cursor_ms = 0
        m = metrics
        # Series that exist from the start read 0 rather than being absent.
        m.pulled.labels(name)
        for outcome in OUTCOMES:
            m.leads.labels(name, outcome)
        m.flagged.labels(name)
        for system in ("hubspot", "salesforce"):
            m.api_calls.labels(name, system)
            m.retries.labels(name, system)
        m.running.labels(name).set(0)
        m.lag.labels(name).set_function(self._lag_s)
        for result in ("applied", "refused", "deferred"):
            m.config_reloads.labels(name, result)

    def _lag_s(self) -> float:
        with self._lock:
            cursor_ms = self._cursor_ms
        if not cursor_ms:
            return math.nan
        return max(0.0, self._m._clock() - cursor_ms / 1000)

    # -- CallObserver -----------------------------------------------------------------------
    def call_failed(self, system: str, error: BaseException) -> None:
        self._m.api_errors.labels(self.name, system, error_kind(error)).inc()

    def call_succeeded(self, system: str) -> None:
        del system  # calls are counted by the adapters (see pass_finished)

    def retried(self, system: str) -> None:
        self._m.retries.labels(self.name, system).inc()

    # -- ReloadObserver ---------------------------------------------------------------------
    def config_reload(self, result: str, rules_version: str) -> None:
        """An edit was applied, refused or deferred; ``rules_version`` now judges leads."""
        m, name = self._m, self.name
        if result:
            m.config_reloads.labels(name, result).inc()
        with self._lock:
            for labels in list(m.rules_version._metrics):  # one version per pipeline at a time
                if labels[0] == name and labels[1] != rules_version:
                    m.rules_version.remove(*labels)
        m.rules_version.labels(name, rules_version).set(1)

    # -- PassObserver -----------------------------------------------------------------------
    def pass_started(self, pipeline: str) -> None:
        del pipeline
        self._m.running.labels(self.name).set(1)

    def pass_finished(self, record: PassRecord) -> None:
        m, name = self._m, self.name
        counts = record.counts
        m.pulled.labels(name).inc(counts.get("pulled", 0))
        for outcome in OUTCOMES:
            m.leads.labels(name, outcome).inc(counts.get(outcome, 0))
        m.flagged.labels(name).inc(counts.get("flagged", 0))
        for criterion, count in record.rejected_by_criterion.items():
            m.rejected_by_criterion.labels(name, criterion).inc(count)
        for code, count in record.failed_by_code.items():
            m.failed_by_code.labels(name, code).inc(count)
        m.api_calls.labels(name, "hubspot").inc(record.hubspot_calls)
        m.api_calls.labels(name, "salesforce").inc(record.salesforce_calls)
        for room in record.headroom:
            m.headroom.labels(name, room.system, room.budget).set(room.remaining)
            m.limit.labels(name, room.system, room.budget).set(room.limit)
        m.passes.labels(name, record.result).inc()
        m.last_duration.labels(name).set(record.duration_s)
        m.last_finished.labels(name).set(self._m._clock())
        m.last_success.labels(name).set(1 if record.succeeded else 0)
        for result in RESULTS:
            m.last_result.labels(name, result).set(1 if result == record.result else 0)
        m.running.labels(name).set(0)
        if record.cursor_ms:
            with self._lock:
                self._cursor_ms = record.cursor_ms
