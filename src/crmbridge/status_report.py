"""``crmbridge status``: per pipeline, where the sync stands, read from the state store alone.

For each pipeline: the cursor and the sync lag (now minus the cursor), the ledger counts, the
last pass (its result, counts and API calls), the API headroom that pass saw, and which
replica holds the pipeline's lease (``—`` while there are no leases). Text for people (outside
text escaped), JSON for tools (exact).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from crmbridge.observe import PassRecord
from crmbridge.pipeline import STREAM
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.reports import identity_text
from crmbridge.text import visible

NO_LEASE_HOLDER = "—"


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def pipeline_status(store: StateStore, *, now_s: float) -> dict[str, Any]:
    """One pipeline's status as plain data (the JSON form)."""
    cursor = store.get_cursor(STREAM)
    counts = store.outcome_counts()
    recent = store.recent_passes(1)
    last = recent[0] if recent else None
    return {
        "name": store.identity().pipeline,
        "cursor": {
            "modified_at": _iso(cursor.modified_at_ms) if cursor.modified_at_ms else None,
            "last_id": cursor.last_id,
        },
        "lag_s": round(now_s - cursor.modified_at_ms / 1000, 1) if cursor.modified_at_ms else None,
        "leads": {
            "synced": counts.get("synced", 0),
            "rejected": counts.get("rejected", 0),
            "open_rejects": store.count_rejects(RejectFilter()),
            "parked": store.count_parked(),
            "flagged": store.count_flagged(),
        },
        "last_pass": _pass_json(last) if last is not None else None,
        "lease_holder": store.lease_holder(),
    }


def _pass_json(record: PassRecord) -> dict[str, Any]:
    return {
        "result": record.result,
        "error": record.error,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_s": record.duration_s,
        "counts": dict(record.counts),
        "rejected_by_reason": dict(record.rejected_by_reason),
        "api_calls": {"hubspot": record.hubspot_calls, "salesforce": record.salesforce_calls},
        "headroom": [
            {"system": h.system, "budget": h.budget, "remaining": h.remaining, "limit": h.limit}
            for h in record.headroom
        ],
    }


def status_json(stores: Sequence[StateStore], *, now_s: float | None = None) -> dict[str, Any]:
    """Every pipeline's status, with the store's identity."""
    now = time.time() if now_s is None else now_s
    identity = stores[0].identity()
    return {
        "store": {
            "url": identity.url,
            "store_id": identity.store_id,
            "created_at": identity.created_at,
            "created_url": identity.created_url,
        },
        "pipelines": [pipeline_status(store, now_s=now) for store in stores],
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return " ".join(shown[:2]) or "0s"


def status_text(stores: Sequence[StateStore], *, now_s: float | None = None) -> str:
    """`status` as people read it: the store, then one block per pipeline."""
    data = status_json(stores, now_s=now_s)
    blocks = [identity_text(stores[0].identity())]
    for pipeline in data["pipelines"]:
        blocks.append("\n".join(visible(line) for line in _pipeline_lines(pipeline)))
    return "\n\n".join(blocks)


def _pipeline_lines(p: dict[str, Any]) -> list[str]:
    cursor, leads, last = p["cursor"], p["leads"], p["last_pass"]
    at = cursor["modified_at"] or "not started"
    lag = _duration(p["lag_s"]) if p["lag_s"] is not None else "—"
    lines = [
        f"pipeline          {p['name']}",
        f"cursor            {at} (last id {cursor['last_id']})",
        f"sync lag          {lag} (now minus the cursor)",
        f"leads synced      {leads['synced']}",
        f"leads rejected    {leads['rejected']} ({leads['open_rejects']} open rejects)",
        f"leads parked      {leads['parked']} (retried first next pass)",
        f"leads with flags  {leads['flagged']} (synced with values to fix: `crmbridge flagged`)",
    ]
    if last is None:
        lines.append("last pass         none recorded yet")
    else:
        counts = last["counts"]
        shown = ", ".join(
            f"{name} {counts.get(name, 0)}"
            for name in ("pulled", "created", "updated", "unchanged", "rejected", "parked")
        )
        lines.append(
            f"last pass         {last['result']} at {last['finished_at']} "
            f"({last['duration_s']:.1f} s)"
        )
        if last["error"]:
            lines.append(f"                  {last['error']}")
        lines.append(f"                  {shown}")
        calls = last["api_calls"]
        lines.append(
            f"                  API calls HubSpot {calls['hubspot']}, "
            f"Salesforce {calls['salesforce']}"
        )
        lines.append(f"API headroom      {_headroom_text(last['headroom'])}")
    holder = p["lease_holder"]
    lines.append(f"lease held by     {holder or NO_LEASE_HOLDER}")
    return lines


def _headroom_text(rooms: list[dict[str, Any]]) -> str:
    names: dict[str, Callable[[dict[str, Any]], str]] = {
        "salesforce": lambda h: f"Salesforce {h['budget']} {h['remaining']:,} of {h['limit']:,}",
        "hubspot": lambda h: f"HubSpot {h['budget']} {h['remaining']:,} of {h['limit']:,}",
    }
    shown = [names.get(h["system"], names["hubspot"])(h) for h in rooms]
    if not any(h["system"] == "hubspot" for h in rooms):
        shown.append("HubSpot not reported (search answers carry no rate-limit headers)")
    return "; ".join(shown) if shown else "—"
