"""Update policies against Leads edited in Salesforce: what crmbridge writes over a rep's work,
through the real client library and the Salesforce simulator, with exact call counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crmbridge.model import Outcome

from .conftest import MAPPINGS, World

QUERY = "GET /query"
UPSERT = "PATCH /composite/sobjects/Lead/{extField}"
DESCRIBE = "GET /sobjects/Lead/describe"

POLICIES = {
    # always (the default) for Budget__c; one field for each of the other three policies.
    "  Title: {from: jobtitle,": "  Title: {update: if_blank, from: jobtitle,",
    "  Phone: {from: phone,": "  Phone: {update: on_create, from: phone,",
    "  Pain_Point__c: {from: pain_point,": "  Pain_Point__c: {update: never, from: pain_point,",
}


@pytest.fixture
def policy_world(world: World, tmp_path: Path) -> World:
    """The world with the shipped map, but Title if_blank, Phone on_create, Pain point never."""
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    fields = (mappings / "fields.yaml").read_text(encoding="utf-8")
    for old, new in POLICIES.items():
        assert old in fields
        fields = fields.replace(old, new)
    (mappings / "fields.yaml").write_text(fields, encoding="utf-8")
    world.mappings = mappings
    return world


def calls(world: World) -> tuple[int, int, int]:
    log = world.salesforce.calls
    return log.count(DESCRIBE), log.count(QUERY), log.count(UPSERT)


def rep_edits(world: World, contact: str, **fields: object) -> None:
    """A sales rep changes the Lead in Salesforce (not through crmbridge, no API call counted)."""
    [result] = world.salesforce.org.upsert(
        [{"HubSpot_Contact_Id__c": contact, **fields}], auto_assign=False
    )
    assert result["success"], result


def test_each_policy_against_a_lead_a_rep_edited(policy_world: World) -> None:
    """always overwrites, if_blank keeps the rep's title, on_create keeps the phone, never never
    writes; the current values cost one query per batch, and nothing else."""
    w = policy_world
    contact = w.add(phone="+1 555 0100", pain_point="Stockouts", jobtitle="CEO")
    first = w.sync()
    assert (first.created, first.salesforce_calls) == (1, 3)
    assert calls(w) == (1, 1, 1)
    lead = w.lead(contact)
    assert lead is not None
    assert (lead["Title"], lead["Phone"], lead.get("Pain_Point__c")) == (
        "CEO",
        "+1 555 0100",
        None,
    )
    rep_edits(w, contact, Title="Chief Executive", Phone="+1 555 9999")
    w.edit(contact, jobtitle="CFO", phone="+1 555 0200", budget="$200,000", pain_point="Late")
    second = w.sync()
    assert (second.updated, second.salesforce_calls) == (1, 2)
    assert calls(w) == (1, 2, 2)
    lead = w.lead(contact)
    assert lead is not None
    assert lead["Budget__c"] == 200000  # always: HubSpot's new value
    assert lead["Title"] == "Chief Executive"  # if_blank: the rep's value stays
    assert lead["Phone"] == "+1 555 9999"  # on_create: only ever written on create
    assert lead.get("Pain_Point__c") is None  # never: never written
    [*_, updated] = w.app.store.decisions_of(contact)
    assert updated.outcome is Outcome.UPDATED
    assert updated.payload is not None
    assert not {"Title", "Phone", "Pain_Point__c"} & set(updated.payload)  # what was sent


def test_if_blank_fills_a_field_the_rep_cleared(policy_world: World) -> None:
    """A Title cleared in Salesforce is blank again: the next change in HubSpot fills it."""
    w = policy_world
    contact = w.add(jobtitle="CEO")
    w.sync()
    rep_edits(w, contact, Title=None)
    w.edit(contact, jobtitle="CIO")
    w.sync()
    lead = w.lead(contact)
    assert lead is not None
    assert lead["Title"] == "CIO"


def test_current_values_are_read_in_one_query_per_batch(policy_world: World) -> None:
    """Five changed leads in one batch: one query for all of them, then one upsert."""
    w = policy_world
    contacts = [w.add(jobtitle="CEO") for _ in range(5)]
    w.sync()
    for contact in contacts:
        w.edit(contact, budget="$300,000")
    summary = w.sync()
    assert summary.updated == 5
    assert calls(w) == (1, 2, 2)  # describe once; per pass one query and one upsert


def test_the_shipped_map_spends_no_query(world: World) -> None:
    """Every shipped field is written always: a pass makes no query at all."""
    world.add()
    world.sync()
    assert calls(world) == (1, 0, 1)
