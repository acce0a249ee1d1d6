"""What-if on a seeded store: exact flips against the same proposal judged live, and proof
that the replay calls no API and writes nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from crmbridge.configuration import load_configuration
from crmbridge.judgement import PASSING, passes_gate
from crmbridge.model import Cursor, SourceContact
from crmbridge.sandbox.seed import seed_portal
from crmbridge.state import open_store
from crmbridge.whatif import NEWLY_QUALIFIED, NEWLY_REJECTED, replay

from ._cli import base_env, crmbridge
from .conftest import MAPPINGS, World

SHIPPED_RULES = (MAPPINGS / "qualification.yaml").read_text(encoding="utf-8")
#: A looser budget (40,000) and a stricter timeline (under 90 days): flips both ways.
PROPOSED_RULES = (
    SHIPPED_RULES.replace("version: bant-2026.2", "version: bant-proposed")
    .replace("    value: 50000\n", "    value: 40000\n")
    .replace("    value: 180\n", "    value: 90\n")
)


def dump(path: Path) -> list[str]:
    """Every row of every table of a SQLite store, as SQL text."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def whatif(world: World, proposal: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`crmbridge whatif` on the world's store with ``proposal`` and the shipped map."""
    return crmbridge(
        "whatif",
        "--rules",
        str(proposal),
        "--mappings",
        str(MAPPINGS),
        "--state-url",
        f"sqlite:///{world.state_path}",
        *extra,
        env=base_env(),
        cwd=proposal.parent,
    )


@pytest.fixture
def seeded(world: World) -> World:
    """300 seeded contacts, synced once with the shipped rules."""
    seed_portal(world.portal, count=300, seed=7)
    summary = world.sync()
    assert summary.stopped_early is None
    return world


def test_whatif_flips_exactly_what_the_proposal_judged_live_flips(
    seeded: World, tmp_path: Path
) -> None:
    """Every flip the replay reports is the verdict the same proposal gives the same contacts
    pulled live from HubSpot, and there are no others."""
    proposal = tmp_path / "proposed.yaml"
    proposal.write_text(PROPOSED_RULES, encoding="utf-8")
    config = load_configuration(MAPPINGS, rules_file=proposal)
    store = seeded.app.store
    stored = store.latest_schema("Lead")
    assert stored is not None
    result = replay(store.latest_decisions(chunk_size=50), config, stored.schema)

    before = {
        item.decision.contact_id: passes_gate(item.decision)
        for chunk in store.latest_decisions()
        for item in chunk
    }
    pages = seeded.app.source.pull(Cursor(), seeded.clock.ms(), config.pulled_properties)
    contacts: list[SourceContact] = [c for page in pages for c in page.contacts]
    seeded.app.pipeline.use_config(config)
    live = {
        d.contact_id: d.outcome in PASSING for d in seeded.app.pipeline.judge_contacts(contacts)
    }
    expected = {
        cid: NEWLY_QUALIFIED if now else NEWLY_REJECTED
        for cid, now in live.items()
        if now != before[cid]
    }
    assert (result.stored, result.replayed) == (297, 297)
    assert {f.new.contact_id: f.direction for f in result.flips} == expected
    assert (result.newly_qualified, result.newly_rejected) == (2, 52)
    assert result.by_criterion["budget"][NEWLY_QUALIFIED] == 2
    assert result.by_criterion["timeline"][NEWLY_REJECTED] == 52
    assert sum(c[NEWLY_REJECTED] for c in result.by_lead_source.values()) == 52
    assert sum(c["replayed"] for c in result.by_stage.values()) == 297


def test_the_whatif_command_calls_no_api_and_writes_nothing(seeded: World, tmp_path: Path) -> None:
    """`crmbridge whatif` leaves the store byte for byte and both simulators' counters as
    they were, and its JSON lists each flip with its old and new reasons."""
    proposal = tmp_path / "proposed.yaml"
    proposal.write_text(PROPOSED_RULES, encoding="utf-8")
    seeded.close()
    rows = dump(seeded.state_path)
    hubspot, salesforce = seeded.hubspot.calls.snapshot(), seeded.salesforce.calls.snapshot()
    done = whatif(seeded, proposal, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert dump(seeded.state_path) == rows
    assert seeded.hubspot.calls.snapshot() == hubspot
    assert seeded.salesforce.calls.snapshot() == salesforce
    report = json.loads(done.stdout)
    assert (report["newly_qualified"], report["newly_rejected"]) == (2, 52)
    assert len(report["flips"]) == 54
    rejected = next(f for f in report["flips"] if f["flip"] == NEWLY_REJECTED)
    assert rejected["old"]["reasons"] == []
    assert [r["criterion"] for r in rejected["new"]["reasons"]] == ["timeline"]
    assert rejected["new"]["rule_set_version"] == "bant-proposed"
    assert rejected["lead_source"] != "(not pulled)"


def test_a_rule_on_a_property_never_pulled_is_not_replayable(seeded: World, tmp_path: Path) -> None:
    """A proposed criterion on `website`, which no stored decision read, is reported by name
    instead of guessed; the table says who reads it."""
    proposal = tmp_path / "proposed.yaml"
    proposal.write_text(
        SHIPPED_RULES + "  - name: has a website\n    property: website\n    op: present\n",
        encoding="utf-8",
    )
    seeded.close()
    done = whatif(seeded, proposal)
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert lines[2].split() == ["replayed", "0"]
    assert (
        '297 never read HubSpot property "website" (read by criterion "has a website"); '
        "`crmbridge sync --dry-run` judges them live"
    ) in lines


def test_whatif_without_a_stored_describe_says_what_to_do(tmp_path: Path) -> None:
    """A store no pass has run against holds no describe: exit 2 with the hint."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url, create=True).close()
    done = crmbridge(
        "whatif", "--mappings", str(MAPPINGS), "--state-url", url, env=base_env(), cwd=tmp_path
    )
    assert done.returncode == 2
    assert "holds no Salesforce describe of Lead yet" in done.stderr
    assert "crmbridge sync --once" in done.stderr
