"""Metrics after a real pass agree with what the simulators themselves counted."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from crmbridge.bootstrap import build_app
from crmbridge.health import PipelineHealth
from crmbridge.metrics import SyncMetrics
from crmbridge.observe import CallObservers
from crmbridge.passes import RecordedPipeline
from crmbridge.service import StorePassLog, headroom
from crmbridge.web.app import create_app

from .conftest import World

PIPELINE = "default"


def _value(metrics: SyncMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"pipeline": PIPELINE, **labels})
    return 0.0 if value is None else value


def test_metrics_agree_with_the_simulators_counters_after_a_pass(world: World) -> None:
    """Calls, errors, retries, leads by outcome, rejects by criterion, Salesforce failures by
    code and the daily headroom match what HubSpot and Salesforce served, faults included."""
    qualified = [world.add() for _ in range(5)]
    for _ in range(3):
        world.add(budget="1000")
    world.salesforce.inject_row_error(qualified[0], code="DUPLICATES_DETECTED", times=10)
    world.salesforce.inject_status(503, path_pattern="/composite/sobjects", times=2)
    world.hubspot.inject_status(502, path_pattern="/search", times=1)
    world.clock.advance(61)

    metrics = SyncMetrics(clock=world.clock.s)
    observer = metrics.pipeline(PIPELINE)
    health = PipelineHealth(PIPELINE, poll_interval_s=300, store_ping=lambda: None)
    app = build_app(
        world.settings(),
        sleep=world.slept.append,
        clock=world.clock.s,
        observer=CallObservers(observer, health),
    )
    try:
        recorded = RecordedPipeline(
            app.pipeline,
            name=PIPELINE,
            observers=[observer, health, StorePassLog(app.store)],
            headroom=lambda: headroom(app),
            clock=world.clock.s,
        )
        summary = recorded.run_pass()
        [kept] = app.store.recent_passes(1)
    finally:
        app.close()

    assert summary.stopped_early is None
    hubspot_served = world.hubspot.calls.count()
    salesforce_served = world.salesforce.calls.count()
    assert _value(metrics, "crmbridge_api_calls_total", system="hubspot") == hubspot_served
    assert _value(metrics, "crmbridge_api_calls_total", system="salesforce") == salesforce_served
    assert _value(metrics, "crmbridge_api_errors_total", system="hubspot", kind="http_502") == 1
    assert (
        _value(
            metrics, "crmbridge_api_errors_total", system="salesforce", kind="SERVER_UNAVAILABLE"
        )
        == 2
    )
    assert _value(metrics, "crmbridge_api_retries_total", system="hubspot") == 1
    assert _value(metrics, "crmbridge_api_retries_total", system="salesforce") == 2
    assert _value(metrics, "crmbridge_leads_pulled_total") == 8
    assert _value(metrics, "crmbridge_leads_total", outcome="created") == len(
        world.salesforce.org.leads
    )
    assert _value(metrics, "crmbridge_leads_total", outcome="created") == 4
    assert _value(metrics, "crmbridge_leads_total", outcome="rejected") == 4
    assert _value(metrics, "crmbridge_rejects_by_criterion_total", criterion="budget") == 3
    assert _value(metrics, "crmbridge_salesforce_failures_total", code="DUPLICATES_DETECTED") == 1
    used, limit = world.salesforce.api_usage
    assert (
        _value(metrics, "crmbridge_api_headroom", system="salesforce", budget="daily")
        == limit - used
    )
    assert _value(metrics, "crmbridge_last_pass_success") == 1
    assert _value(metrics, "crmbridge_last_pass_result", result="ok") == 1
    assert _value(metrics, "crmbridge_sync_lag_seconds") >= 60  # the index-lag margin at least
    # The store kept the same figures for `crmbridge status`.
    assert (kept.result, kept.hubspot_calls, kept.salesforce_calls) == (
        "ok",
        hubspot_served,
        salesforce_served,
    )
    assert kept.counts["created"] == 4
    # And /metrics serves them in Prometheus' text format.
    text = create_app(registry=metrics.registry).test_client().get("/metrics").get_data(True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = [
        s
        for s in families["crmbridge_api_calls"].samples
        if s.labels == {"pipeline": PIPELINE, "system": "salesforce"} and s.name.endswith("_total")
    ]
    assert sample.value == salesforce_served
