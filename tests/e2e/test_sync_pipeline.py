"""The sync core end to end: real client libraries, simulators over real HTTP(S), SQLite state."""

from __future__ import annotations

import pytest

from crmbridge.model import Outcome
from crmbridge.ports import RejectFilter
from crmbridge.sandbox._server import Fault, Response
from crmbridge.sandbox.seed import seed_portal

from .conftest import World, set_env_ca_bundles


def test_qualified_lead_is_created_with_mapped_fields(world: World) -> None:
    """A qualified contact becomes one Lead with mapped fields, stage and external id."""
    contact = world.add()
    summary = world.sync()
    assert summary.created == 1
    assert summary.rejected == 0
    lead = world.lead(contact)
    assert lead is not None
    assert lead["LastName"] == "Lima"
    assert lead["Company"] == "Acme Tools"
    assert lead["Industry"] == "Manufacturing"
    assert lead["Budget__c"] == 120000
    assert lead["Timeline_Days__c"] == 90
    assert lead["Status"] == "Open - Not Contacted"
    assert lead["LeadSource"] == "Web"


def test_unqualified_lead_is_rejected_with_one_reason_per_criterion(world: World) -> None:
    """A contact failing budget and authority is not pushed; the reject names both reasons."""
    contact = world.add(budget="30000", jobtitle="Analyst")
    summary = world.sync()
    assert summary.created == 0
    assert summary.rejected_by_reason == {"budget": 1, "authority": 1}
    assert world.lead(contact) is None
    [record] = world.app.store.rejects(RejectFilter())
    messages = [r.message for r in record.decision.reasons]
    assert messages == [
        "budget: 30000 is not > 50000",
        'authority: job title "Analyst" is not one of CEO, CFO, CIO',
    ]
    assert record.decision.rule_set_version == "bant-2026.2"
    assert record.decision.inputs["budget"] == "30000"


def test_dry_run_counts_what_a_pass_would_do_and_writes_nothing(world: World) -> None:
    """A dry run predicts the real pass's counts, pushes nothing and leaves no state behind."""
    for _ in range(3):
        world.add()
    for _ in range(2):
        world.add(budget="10")
    dry = world.app.pipeline.run_pass(dry_run=True)
    assert (dry.pulled, dry.created, dry.updated, dry.rejected) == (5, 3, 0, 2)
    assert dry.rejected_by_reason == {"budget": 2}
    assert world.upsert_calls() == 0
    store = world.app.store
    assert store.get_cursor("hubspot.contacts").modified_at_ms == 0
    assert store.count_rejects(RejectFilter(include_resolved=True)) == 0
    real = world.sync()
    assert (real.created, real.rejected) == (dry.created, dry.rejected)
    synced = store.contacts_with_status("synced", limit=1)[0]
    world.edit(synced, jobtitle="CEO")
    world.clock.advance(61)
    again = world.app.pipeline.run_pass(dry_run=True)
    assert (again.created, again.updated) == (0, 1)
    assert world.upsert_calls() == 1


def test_second_run_pushes_nothing(world: World) -> None:
    """Re-running with no change in HubSpot makes no Salesforce upsert and pulls nothing."""
    for _ in range(5):
        world.add()
    first = world.sync()
    assert first.created == 5
    upserts = world.upsert_calls()
    second = world.sync()
    assert (second.pulled, second.created, second.updated) == (0, 0, 0)
    assert world.upsert_calls() == upserts
    assert second.salesforce_calls == 0


def test_changed_contact_is_updated_not_duplicated(world: World) -> None:
    """A later edit in HubSpot updates the same Lead (upsert by external id)."""
    contact = world.add()
    world.sync()
    world.edit(contact, jobtitle="CEO", phone="+1 555 0100")
    summary = world.sync()
    assert (summary.created, summary.updated) == (0, 1)
    assert len(world.salesforce.org.leads) == 1
    lead = world.lead(contact)
    assert lead is not None
    assert lead["Title"] == "CEO"
    assert lead["Phone"] == "+1 555 0100"


def test_no_op_bump_in_hubspot_costs_no_push(world: World) -> None:
    """A lastmodifieddate bump without a mapped change is recorded as unchanged, not pushed."""
    contact = world.add()
    world.sync()
    upserts = world.upsert_calls()
    # NEW picks no stage of its own: the mapped Status (from the MQL stage) stays the same.
    world.edit(contact, hs_lead_status="NEW")
    summary = world.sync()
    assert (summary.pulled, summary.unchanged, summary.updated) == (1, 1, 0)
    assert world.upsert_calls() == upserts


def test_activity_bump_on_a_rejected_contact_adds_no_reject(world: World) -> None:
    """HubSpot bumping lastmodifieddate with nothing judged changed leaves one open reject."""
    contact = world.add(budget="10")
    world.sync()
    world.edit(contact)  # activity: the timestamp moves, no property the rules read changes
    summary = world.sync()
    assert summary.pulled == 1
    store = world.app.store
    assert len(store.decisions_of(contact)) == 1
    assert store.count_rejects(RejectFilter(include_resolved=True)) == 1


def test_rejected_contact_that_now_qualifies_is_synced(world: World) -> None:
    """A rejected lead edited to meet every criterion is pushed, and its reject resolved."""
    contact = world.add(budget="TBD")
    first = world.sync()
    assert first.rejected == 1
    world.edit(contact, budget="75000")
    second = world.sync()
    assert second.created == 1
    assert world.lead(contact) is not None
    store = world.app.store
    assert store.rejects(RejectFilter()) == []
    [resolved] = store.rejects(RejectFilter(include_resolved=True))
    assert resolved.resolution == "synced later"


def test_bad_input_becomes_rejects_never_a_crash(world: World) -> None:
    """Malformed values give rejects with reasons; a qualified lead missing a required value or
    with a bad e-mail is synced with a flag, as the shipped map's `incomplete` says."""
    cases = {
        world.add(budget="$75,000,00x"): "budget",
        world.add(timeline_days="ASAP"): "timeline",
        world.add(jobtitle=None): "authority",
    }
    flagged = {
        world.add(lastname=None): ("LastName", "REQUIRED"),
        world.add(company="   "): ("Company", "REQUIRED"),
        world.add(email="bad@"): ("Email", "INVALID_EMAIL"),
        world.add(email="josé@example.com"): ("Email", "INVALID_EMAIL"),
    }
    ok = world.add(company="X" * 300)  # too long: truncated by the shipped map, still synced
    summary = world.sync()
    assert summary.stopped_early is None
    assert summary.rejected == len(cases)
    assert summary.flagged == len(flagged)
    store = world.app.store
    for contact, criterion in cases.items():
        [record] = store.rejects(RejectFilter(contact_id=contact))
        assert criterion in [r.criterion for r in record.decision.reasons], record
        assert all(r.message for r in record.decision.reasons)
    for contact, (field, code) in flagged.items():
        [decision] = store.decisions_of(contact)
        assert [(f.field, f.code) for f in decision.flags] == [(field, code)]
        assert world.lead(contact) is not None
    lead = world.lead(ok)
    assert lead is not None
    assert len(str(lead["Company"])) == 255


def test_per_record_salesforce_error_becomes_reject_with_code(world: World) -> None:
    """A row error inside Salesforce's HTTP 200 is a reject carrying its statusCode."""
    bad = world.add()
    good = world.add()
    world.salesforce.inject_row_error(
        bad, code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message="Budget needs approval"
    )
    summary = world.sync()
    assert summary.created == 1
    assert summary.rejected_by_reason == {"salesforce.FIELD_CUSTOM_VALIDATION_EXCEPTION": 1}
    assert world.lead(good) is not None
    [record] = world.app.store.rejects(RejectFilter(stage="salesforce"))
    [reason] = record.decision.reasons
    assert reason.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "Budget needs approval" in reason.message


def test_converted_lead_change_is_a_reject_not_a_retry_loop(world: World) -> None:
    """A HubSpot change to a lead sales already converted is rejected with its code, once."""
    contact = world.add()
    world.sync()
    lead = world.lead(contact)
    assert lead is not None
    world.salesforce.org.convert(str(lead["Id"]))
    world.edit(contact, jobtitle="CEO")
    summary = world.sync()
    assert summary.rejected_by_reason == {"salesforce.CANNOT_UPDATE_CONVERTED_LEAD": 1}
    assert summary.parked == 0
    assert world.upsert_calls() == 2  # no resend of a permanent error


def test_duplicate_rule_block_is_a_reject_with_its_code(world: World) -> None:
    """An org duplicate rule refusing a second lead with the same e-mail is a reported reject."""
    world.salesforce.org.add_duplicate_rule("Email")
    world.add(email="same@example.com")
    world.sync()
    second = world.add(email="same@example.com", modified_ago_s=0)
    summary = world.sync()
    assert summary.rejected_by_reason == {"salesforce.DUPLICATES_DETECTED": 1}
    [record] = world.app.store.rejects(RejectFilter(contact_id=second))
    assert record.decision.stage is not None
    assert record.decision.stage.value == "salesforce"


def test_row_lock_is_resent_within_the_pass(world: World) -> None:
    """UNABLE_TO_LOCK_ROW on a row is resent with backoff and then succeeds."""
    contact = world.add()
    world.salesforce.inject_row_error(contact, code="UNABLE_TO_LOCK_ROW", times=2)
    summary = world.sync()
    assert summary.created == 1
    assert summary.parked == 0
    assert world.upsert_calls() == 3
    assert world.slept == [1.0, 2.0]


def test_persistent_lock_parks_the_lead_and_next_pass_syncs_it(world: World) -> None:
    """A row still locked after the in-pass retries is parked, then pushed next pass."""
    contact = world.add()
    world.salesforce.inject_row_error(contact, code="UNABLE_TO_LOCK_ROW", times=4)
    first = world.sync()
    assert first.parked == 1
    assert world.app.store.count_parked() == 1
    second = world.sync()
    assert second.created == 1
    assert world.app.store.count_parked() == 0
    assert world.lead(contact) is not None


def test_injected_429_and_5xx_are_survived(world: World) -> None:
    """Rate limits and server errors on both sides are retried; every lead arrives once."""
    contacts = [world.add() for _ in range(3)]
    world.hubspot.inject_rate_limit("SECONDLY", times=2, path_pattern="/search$")
    world.hubspot.inject_status(502, path_pattern="/search$", times=1)
    world.salesforce.inject_status(503, path_pattern="composite/sobjects", times=1, html=True)
    world.salesforce.inject_status(500, path_pattern="composite/sobjects", times=1)
    summary = world.sync()
    assert summary.stopped_early is None
    assert summary.created == 3
    assert all(world.lead(c) is not None for c in contacts)
    assert len(world.salesforce.org.leads) == 3
    # 3 failed searches + 1 good; 2 failed upserts + 1 good (+ describe).
    assert world.search_calls() == 4
    assert world.upsert_calls() == 3
    assert len(world.slept) == 5


def test_salesforce_retry_after_is_honoured(world: World) -> None:
    """A 503 from Salesforce with Retry-After waits exactly that long before the retry."""
    contact = world.add()
    unavailable = [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    world.salesforce.faults.add(
        Fault("PATCH", "composite/sobjects", Response(503, unavailable, {"Retry-After": "7"}))
    )
    summary = world.sync()
    assert summary.created == 1
    assert world.lead(contact) is not None
    assert world.slept == [7.0]


def test_request_level_refusal_is_split_not_dropped(world: World) -> None:
    """When Salesforce refuses a whole request, its halves are sent on their own."""
    contacts = [world.add() for _ in range(4)]
    world.salesforce.inject_status(
        400, path_pattern="composite/sobjects", times=1, error_code="JSON_PARSER_ERROR"
    )
    summary = world.sync()
    # The refused request of 4, then two requests of 2: nobody lost, no reject invented.
    assert summary.created == 4
    assert summary.rejected == 0
    assert world.upsert_calls() == 3
    assert all(world.lead(c) is not None for c in contacts)


def test_daily_budget_stops_the_pass_and_keeps_the_cursor(world: World) -> None:
    """REQUEST_LIMIT_EXCEEDED stops pushing; the cursor stays and the next pass resumes."""
    contact = world.add()
    world.salesforce.inject_status(
        403,
        path_pattern="composite/sobjects",
        times=1,
        error_code="REQUEST_LIMIT_EXCEEDED",
        message="TotalRequests Limit exceeded.",
    )
    first = world.sync()
    assert first.stopped_early is not None
    assert "TotalRequests" in first.stopped_early
    assert not first.credentials_refused
    assert world.lead(contact) is None
    assert world.app.store.get_cursor("hubspot.contacts").modified_at_ms == 0
    second = world.sync()
    assert second.created == 1


def test_reserve_of_the_daily_budget_is_left_to_people(world: World) -> None:
    """At the configured reserve (20 % by default) crmbridge stops before spending more."""
    world.add()
    world.salesforce.set_api_usage(world.salesforce.api_usage[1] - 100)
    summary = world.sync()
    assert summary.stopped_early is not None
    assert "reserved" in summary.stopped_early
    assert world.upsert_calls() == 0


def test_pushing_resumes_when_the_budget_recovers(world: World) -> None:
    """After stopping at the reserve, a later pass checks the budget again and syncs."""
    contact = world.add()
    world.salesforce.set_api_usage(world.salesforce.api_usage[1] - 100)
    first = world.sync()
    assert first.stopped_early is not None
    world.salesforce.set_api_usage(1_000)  # the rolling 24 h window moved on
    second = world.sync()
    assert second.stopped_early is None
    assert second.created == 1
    assert world.lead(contact) is not None
    # One call to re-read the budget, then the push.
    assert world.salesforce.calls.count("GET /limits") == 1


def test_expired_session_is_renewed_once_and_replayed(world: World) -> None:
    """A 401 INVALID_SESSION_ID mid-run gets a new token and one replay; nothing is lost."""
    world.add()
    world.sync()
    world.salesforce.expire_session()
    contact = world.add(modified_ago_s=0)
    summary = world.sync()
    assert summary.stopped_early is None
    assert summary.created == 1
    assert world.lead(contact) is not None


def test_bad_hubspot_token_is_fatal(world: World) -> None:
    """A refused HubSpot token stops the pass as fatal (the daemon exits for a person)."""
    world.add()
    assert world.app is not None  # built with the token the portal accepts now
    world.hubspot.access_token = "rotated-by-an-admin"
    summary = world.sync()
    assert summary.credentials_refused
    assert "AuthenticationError" in (summary.stopped_early or "")


@pytest.mark.parametrize(
    ("where", "nth"),
    [("commit", 1), ("commit", 2), ("upsert", 1), ("upsert", 2), ("upsert", 3)],
)
def test_crash_at_any_point_loses_nothing_and_duplicates_nothing(
    world: World, where: str, nth: int
) -> None:
    """A process dying after a push or at a commit repeats at most an upsert after restart."""
    qualified = [world.add(modified_ago_s=900 - i) for i in range(450)]
    unqualified = [world.add(modified_ago_s=400 - i, budget="10") for i in range(50)]
    app = world.app
    target = app.store if where == "commit" else app.sink
    name = "commit_page" if where == "commit" else "upsert"
    original = getattr(target, name)
    calls = 0

    def dying(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if where == "upsert" and calls == nth:
            original(*args, **kwargs)  # Salesforce got it; crmbridge never learns the result
        if calls == nth:
            raise KeyboardInterrupt("power cut")  # not an Exception: nothing catches it
        return original(*args, **kwargs)

    setattr(target, name, dying)
    with pytest.raises(KeyboardInterrupt):
        world.sync()
    world.restart()
    summary = world.sync()
    assert summary.stopped_early is None
    keys = [str(lead["HubSpot_Contact_Id__c"]) for lead in world.salesforce.org.leads]
    assert sorted(keys) == sorted(qualified)  # each qualified lead once, no other
    store = world.app.store
    assert store.outcome_counts() == {"synced": 450, "rejected": 50}
    assert store.count_rejects(RejectFilter()) == 50
    assert {r.decision.contact_id for r in store.rejects(RejectFilter(limit=100))} == set(
        unqualified
    )


def test_exact_api_calls_for_a_backfill(world: World) -> None:
    """1,000 qualified contacts on distinct timestamps cost 6 searches, 1 describe, 5 upserts."""
    for i in range(1000):
        world.add(modified_ago_s=10_000 - i)
    summary = world.sync()
    assert summary.created == 1000
    assert world.search_calls() == 6
    assert world.upsert_calls() == 5
    assert summary.salesforce_calls == 6
    assert world.salesforce.calls.count("GET /sobjects/Lead/describe") == 1


def test_large_tie_group_is_drained_by_id(world: World) -> None:
    """450 contacts on one millisecond (an import) all arrive, none twice."""
    for _ in range(450):
        world.add(modified_ago_s=500)
    for i in range(10):
        world.add(modified_ago_s=400 - i)
    summary = world.sync()
    assert summary.created == 460
    assert len(world.salesforce.org.leads) == 460
    # 1 forward page all in the tie, 3 drain pages (200, 200, 50), 1 forward for the rest.
    assert world.search_calls() == 5


@pytest.mark.slow
def test_backfill_beyond_the_search_cap_loses_nothing(world: World) -> None:
    """A 10,500-contact portal with ties bigger than a page syncs fully, and a re-run is idle."""
    ids = seed_portal(world.portal, count=10_500, seed=11, tie_groups=[600, 250, 40])
    archived = {cid for cid in ids if (world.portal.get(cid) or {}).get("archived")}
    live = set(ids) - archived
    summary = world.sync()
    assert summary.stopped_early is None
    assert summary.pulled == len(live)
    store = world.app.store
    ledger = store.ledger(sorted(live))
    assert set(ledger) == live  # every live contact has a durable outcome
    synced = {cid for cid, entry in ledger.items() if entry.status == "synced"}
    rejected = {cid for cid, entry in ledger.items() if entry.status == "rejected"}
    assert synced | rejected == live
    assert summary.created == len(synced)
    assert summary.rejected == len(rejected)
    leads = world.salesforce.org.leads
    keys = [str(lead["HubSpot_Contact_Id__c"]) for lead in leads]
    assert len(keys) == len(set(keys)) == len(synced)
    assert set(keys) == synced
    assert world.search_calls() < 10_500 / 200 * 1.2 + 10
    # Nothing left: the next pass pulls nothing and pushes nothing.
    upserts = world.upsert_calls()
    again = world.sync()
    assert (again.pulled, again.created, again.updated) == (0, 0, 0)
    assert world.upsert_calls() == upserts


@pytest.mark.parametrize("env_bundle", [True, False])
def test_salesforce_ca_is_pinned_whatever_the_environment_says(
    world: World, monkeypatch: pytest.MonkeyPatch, env_bundle: bool
) -> None:
    """The configured CA bundle is trusted with REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE set or unset."""
    set_env_ca_bundles(monkeypatch, present=env_bundle)
    contact = world.add()
    summary = world.sync()
    assert summary.stopped_early is None
    assert world.lead(contact) is not None


def test_decisions_keep_inputs_and_version(world: World) -> None:
    """Every decision, synced or not, is stored with its inputs and rule-set version."""
    good = world.add()
    bad = world.add(budget="10")
    world.sync()
    store = world.app.store
    [synced] = store.decisions_of(good)
    [rejected] = store.decisions_of(bad)
    assert synced.outcome is Outcome.CREATED
    assert rejected.outcome is Outcome.REJECTED
    for decision in (synced, rejected):
        assert decision.rule_set_version == "bant-2026.2"
        assert decision.inputs["jobtitle"] == "CFO"
        assert [c.name for c in decision.criteria] == ["budget", "authority", "need", "timeline"]
