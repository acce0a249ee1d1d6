"""SIGKILL at random moments loses nothing and pushes nothing twice, on SQLite and PostgreSQL;
two replicas share three pipelines on one PostgreSQL and the survivor finishes them all.

What "nothing twice" means here is what the Salesforce simulator counts: every write it
accepted, per Lead (``SalesforceOrg.writes``). A lead whose contact was never edited during the
test must have been written exactly once, however many runners were killed between pushing it
and committing its page (``crmbridge.journal``).
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crmbridge.model import Outcome
from crmbridge.sandbox.runtime import Sandbox
from crmbridge.state import open_store
from tests.store.conftest import (  # noqa: F401 - fixtures
    empty_postgres,
    postgres_database,
    postgres_server,
)

from ._cli import base_env, count_line, crmbridge, start
from ._logs import LogTail

CONTACTS = 20_000
KILLS = 10
EDITS_PER_KILL = 15
UPSERT = "PATCH /composite/sobjects/Lead/{extField}"
#: Lead fields a sync does not set (Salesforce's own, or the assignment rule's).
SALESFORCE_OWN = {"Id", "CreatedDate", "LastModifiedDate", "OwnerId", "IsConverted"}


def _env(box: Sandbox, state_url: str, **extra: str) -> dict[str, str]:
    return {
        **base_env(),
        **box.environment(),
        "CRMBRIDGE_STATE_URL": state_url,
        "CRMBRIDGE_HUBSPOT__SEARCH_PER_S": "1000",
        "CRMBRIDGE_HUBSPOT__INDEX_LAG_S": "0",
        "CRMBRIDGE_POLL_INTERVAL_S": "1",
        "CRMBRIDGE_LEASE_TIMEOUT_S": "2",
        **extra,
    }


def _close(tail: LogTail) -> None:
    if tail.process.poll() is None:
        tail.process.kill()
    tail.finish()
    for stream in (tail.process.stdout, tail.process.stderr):
        if stream is not None:
            stream.close()


def _state_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_database")
    empty_postgres(url)
    return url


def _synced_view(box: Sandbox) -> dict[str, dict[str, object]]:
    """The org's leads by HubSpot contact id, without the fields Salesforce sets itself."""
    leads = box.salesforce.org.leads
    by_contact = {str(lead["HubSpot_Contact_Id__c"]): lead for lead in leads}
    assert len(by_contact) == len(leads), "a contact has more than one Lead"
    return {
        cid: {k: v for k, v in lead.items() if k not in SALESFORCE_OWN}
        for cid, lead in by_contact.items()
    }


def _recovered(events: Iterable[dict[str, Any]]) -> int:
    """Leads a runner did not push again because an earlier runner's push was journalled."""
    return sum(e["answered_from_journal"] + e["found_in_salesforce"] for e in events)


def _live_contacts(box: Sandbox) -> list[str]:
    return [cid for cid, c in box.hubspot.portal.contacts.items() if not c.get("archived")]


def _assert_ledger_matches(state_url: str, pipeline: str, box: Sandbox) -> None:
    """Every live contact has an outcome: synced ones are in the org (created once by the
    ledger's account), every other one is a reject."""
    in_org = set(_synced_view(box))
    store = open_store(state_url, pipeline=pipeline, read_only=True)
    try:
        live = _live_contacts(box)
        entries = store.ledger(live)
        assert set(entries) == set(live), "a contact was never judged"
        synced = {cid for cid, entry in entries.items() if entry.status == "synced"}
        others = {entry.status for cid, entry in entries.items() if cid not in synced}
        assert synced == in_org
        assert others <= {"rejected"}
        for cid in synced:
            created = [d for d in store.decisions_of(cid) if d.outcome is Outcome.CREATED]
            assert len(created) == 1, f"contact {cid}: {len(created)} creations recorded"
    finally:
        store.close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(contacts=CONTACTS, seed=13, ca_dir=tmp_path / "ca") as sandbox:
        yield sandbox


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ten_sigkills_lose_nothing_and_push_nothing_twice(
    backend: str, box: Sandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """20,000 contacts, `crmbridge run` killed ten times at seeded random moments (contacts
    edited between kills), then one more pass: the org holds exactly what one clean pass over
    the final portal gives, each untouched lead written once, every other contact a reject, and
    a further pass pushes nothing."""
    state_url = _state_url(backend, tmp_path, request)
    open_store(state_url, create=True).close()
    env = _env(box, state_url)
    rng = random.Random(2026)
    live = _live_contacts(box)
    edited: set[str] = set()
    recovered = 0
    for kill in range(KILLS):
        tail = LogTail(start("run", env=env, cwd=tmp_path))
        try:
            tail.wait_for("lease_acquired")
            time.sleep(rng.uniform(0.0, 1.5))
            tail.process.send_signal(signal.SIGKILL)
            assert tail.finish() == -signal.SIGKILL, f"run {kill} ended before its kill"
            recovered += _recovered(tail.events("push_recovered"))
        finally:
            _close(tail)
        for cid in rng.sample(live, EDITS_PER_KILL):
            box.hubspot.portal.update_contact(cid, {"company": f"Renamed {kill} Ltd"})
            edited.add(cid)
    assert box.salesforce.calls.count(UPSERT) > 0
    final = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    recovered += _recovered(
        json.loads(line) for line in final.stderr.splitlines() if '"push_recovered"' in line
    )
    print(json.dumps({"backend": backend, "leads_recovered_from_journal": recovered}))
    upserts = box.salesforce.calls.count(UPSERT)
    further = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert further.returncode == 0, further.stderr[-3000:]
    assert count_line(further.stdout, "synced: created") == 0
    assert count_line(further.stdout, "synced: updated") == 0
    assert box.salesforce.calls.count(UPSERT) == upserts

    killed_view = _synced_view(box)
    writes = box.salesforce.org.writes
    by_id = {
        str(lead["HubSpot_Contact_Id__c"]): str(lead["Id"]) for lead in box.salesforce.org.leads
    }
    twice = sorted(cid for cid in killed_view if cid not in edited and writes[by_id[cid]] != 1)
    assert twice == [], f"{len(twice)} untouched leads written more than once: {twice[:10]}"
    _assert_ledger_matches(state_url, "default", box)

    # One clean pass over the final portal into an empty org: the same leads, the same values.
    box.salesforce.reset()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    open_store(reference_url, create=True).close()
    clean = crmbridge("sync", "--once", env=_env(box, reference_url), cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr[-3000:]
    reference = _synced_view(box)
    assert len(reference) > 1000
    assert killed_view.keys() == reference.keys()
    differing = [cid for cid in reference if killed_view[cid] != reference[cid]]
    assert differing == [], f"{len(differing)} leads differ, e.g. {differing[:5]}"


PIPELINES = ("emea", "us", "apac")


def _pipelines_file(tmp_path: Path, boxes: dict[str, Sandbox]) -> Path:
    lines = ["pipelines:"]
    for name, box in boxes.items():
        lines += [
            f"  - name: {name}",
            "    poll_interval_s: 1",
            "    hubspot:",
            f"      base_url: {box.hubspot_url}",
            f"      access_token_env: TEST_HS_{name.upper()}",
            "      search_per_s: 1000",
            "      index_lag_s: 0",
            "    salesforce:",
            f"      instance_url: {box.salesforce_url}",
            f"      access_token_env: TEST_SF_{name.upper()}",
            f"      ca_bundle: {box.salesforce.ca_path}",
        ]
    path = tmp_path / "pipelines.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_two_replicas_three_pipelines_one_killed_mid_pass(
    tmp_path: Path,
    postgres_database: str,  # noqa: F811 - fixture
) -> None:
    """Replica A holds all three pipelines, replica B stands by; A is killed once every org has
    had a push: B takes every pipeline over within the lease timeout and finishes them, and no
    lead is written twice (the simulators' own counts) or created twice (the ledger's)."""
    empty_postgres(postgres_database)
    with (
        Sandbox(contacts=6000, seed=21, ca_dir=tmp_path / "ca-emea") as emea,
        Sandbox(contacts=6000, seed=22, ca_dir=tmp_path / "ca-us") as us,
        Sandbox(contacts=6000, seed=23, ca_dir=tmp_path / "ca-apac") as apac,
    ):
        boxes = dict(zip(PIPELINES, (emea, us, apac), strict=True))
        env = {
            **base_env(),
            "CRMBRIDGE_STATE_URL": postgres_database,
            "CRMBRIDGE_PIPELINES_FILE": str(_pipelines_file(tmp_path, boxes)),
            "CRMBRIDGE_LEASE_TIMEOUT_S": "2",
        }
        for name, box in boxes.items():
            env[f"TEST_HS_{name.upper()}"] = box.hubspot.access_token
            env[f"TEST_SF_{name.upper()}"] = box.salesforce.access_token
        init = crmbridge("state", "init", env=env, cwd=tmp_path)
        assert init.returncode == 0, init.stderr
        first = LogTail(start("run", env=env, cwd=tmp_path))
        second = None
        try:
            first.wait_for("lease_acquired", count=3)
            second = LogTail(start("run", env=env, cwd=tmp_path))
            second.wait_for("lease_standby", count=3)
            standby = {e["pipeline"] for e in second.events("lease_standby")}
            assert standby == set(PIPELINES)
            deadline = time.monotonic() + 120
            while not all(box.salesforce.calls.count(UPSERT) for box in boxes.values()):
                assert time.monotonic() < deadline, first.text()[-3000:]
                time.sleep(0.02)
            first.process.send_signal(signal.SIGKILL)
            first.finish()
            finished_by_first = {e["pipeline"] for e in first.events("pass_finished")}
            second.wait_for("lease_acquired", count=3, timeout_s=30)
            taken = {e["pipeline"] for e in second.events("lease_acquired")}
            assert taken == set(PIPELINES)
            # Each pipeline's first pass under B finishes the backfill; its second finds nothing.
            deadline = time.monotonic() + 150
            while True:
                done = [e for e in second.events("pass_finished") if not e["stopped_early"]]
                quiet = {e["pipeline"] for e in done if e["created"] == e["updated"] == 0}
                if quiet == set(PIPELINES):
                    break
                assert time.monotonic() < deadline, second.text()[-3000:]
                time.sleep(0.2)
            second.process.send_signal(signal.SIGTERM)
            assert second.finish() == 0
        finally:
            _close(first)
            if second is not None:
                _close(second)
        recovered = _recovered(second.events("push_recovered"))
        report = {
            "killed_before_finishing": sorted(set(PIPELINES) - finished_by_first),
            "recovered_from_journal": recovered,
        }
        print(json.dumps(report))
        assert report["killed_before_finishing"], "the kill came after every pass had finished"
        for name, box in boxes.items():
            view = _synced_view(box)
            assert view, f"{name}: nothing synced"
            writes = box.salesforce.org.writes
            assert set(writes.values()) == {1}, f"{name}: a lead was written twice"
            _assert_ledger_matches(postgres_database, name, box)
