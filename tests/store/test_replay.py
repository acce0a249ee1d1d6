"""A what-if replay shared among worker processes gives exactly the serial answer, on SQLite
and PostgreSQL (each worker opens the store on its own, read-only)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from crmbridge.configuration import load_configuration
from crmbridge.judgement import judge
from crmbridge.model import Cursor, Outcome, SourceContact
from crmbridge.ports import StateStore
from crmbridge.sandbox.seed import generate_contacts
from crmbridge.state import DEFAULT_PIPELINE
from crmbridge.testing import reference_lead_schema
from crmbridge.whatif import StoreAddress, WhatIf, replay_store

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SCHEMA = reference_lead_schema()


def fill(store: StateStore, count: int) -> None:
    """``count`` seeded contacts judged by the shipped rules and committed as a pass would."""
    config = load_configuration(MAPPINGS)
    wanted = sorted(config.pulled_properties | {"email"})
    decisions = []
    for number, seed in enumerate(generate_contacts(count, seed=3, start_ms=10**12)):
        props = {name: seed.properties.get(name) for name in wanted}
        contact = SourceContact(str(5000 + number), props, seed.modified_at_ms, seed.archived)
        decision = judge(contact, config, SCHEMA, None)
        if decision.outcome is Outcome.TO_PUSH:
            decision = replace(decision, outcome=Outcome.CREATED, salesforce_id="00Q1")
        decisions.append(decision)
    store.commit_page("hubspot.contacts", decisions, Cursor(1, 1))


def summary(result: WhatIf) -> tuple[object, ...]:
    return (
        result.stored,
        result.replayed,
        result.newly_qualified,
        result.newly_rejected,
        {k: dict(v) for k, v in result.by_criterion.items()},
        {k: dict(v) for k, v in result.by_lead_source.items()},
        [(f.new.contact_id, f.direction) for f in result.flips],
    )


def test_two_workers_replay_exactly_what_one_does(
    store: StateStore, store_url: str, tmp_path: Path
) -> None:
    """Same counts, same breakdowns, same flips in the same order, with 1 and 2 processes."""
    fill(store, 400)
    rules = (MAPPINGS / "qualification.yaml").read_text(encoding="utf-8")
    proposal = tmp_path / "proposed.yaml"
    proposal.write_text(rules.replace("    value: 180\n", "    value: 60\n"), encoding="utf-8")
    config = load_configuration(MAPPINGS, rules_file=proposal)
    address = StoreAddress(store_url, DEFAULT_PIPELINE)
    serial = replay_store(store, config, SCHEMA, chunk_size=50)
    shared = replay_store(store, config, SCHEMA, address=address, workers=2, chunk_size=50)
    assert serial.newly_rejected > 0
    assert summary(shared) == summary(serial)
