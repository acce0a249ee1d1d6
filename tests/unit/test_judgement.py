"""The pure judgement: one contact, the configuration, the describe and its ledger entry in,
one decision out; tiers, scores, synonyms, stage moves and incomplete-lead choices."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from crmbridge.configuration import Configuration, load_configuration
from crmbridge.errors import ConfigError
from crmbridge.judgement import judge, judge_contacts, passes_gate
from crmbridge.model import FlagAction, MoveVerdict, Outcome, RejectStage, SourceContact
from crmbridge.ports import LedgerEntry
from crmbridge.testing import reference_lead_schema
from tests.unit import test_pipeline

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
SCHEMA = reference_lead_schema()

QUALIFIED = {**test_pipeline.QUALIFIED, "lifecyclestage": "marketingqualifiedlead"}


def contact(**props: str | None) -> SourceContact:
    return SourceContact("1001", {**QUALIFIED, **props}, 5_000)


def synced(lead_stage: str | None, payload_hash: str = "old") -> LedgerEntry:
    """The ledger entry of a lead pushed earlier at ``lead_stage``."""
    return LedgerEntry("1001", "synced", 4_000, payload_hash, "00Q1", "v0", lead_stage=lead_stage)


@pytest.fixture(scope="module")
def shipped() -> Configuration:
    return load_configuration(SHIPPED)


def with_files(tmp_path: Path, **files: str) -> Configuration:
    """The shipped configuration with some of its files replaced (name without .yaml)."""
    for name in ("fields", "stages", "qualification"):
        shutil.copy(SHIPPED / f"{name}.yaml", tmp_path / f"{name}.yaml")
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return load_configuration(tmp_path)


def test_a_qualified_new_lead_is_to_push_not_created(shipped: Configuration) -> None:
    """A lead to push is TO_PUSH: only the push can say created or updated."""
    decision = judge(contact(), shipped, SCHEMA, None)
    assert decision.outcome is Outcome.TO_PUSH
    assert decision.payload is not None
    assert decision.payload["LastName"] == "Lima"
    assert decision.rule_set_version == shipped.rules.version


def test_the_same_payload_as_last_pushed_is_unchanged(shipped: Configuration) -> None:
    """Judging again with the last pushed payload's hash gives UNCHANGED and its Salesforce id."""
    first = judge(contact(), shipped, SCHEMA, None)
    assert first.payload_hash is not None
    again = judge(contact(), shipped, SCHEMA, synced("MQL", first.payload_hash))
    assert again.outcome is Outcome.UNCHANGED
    assert again.salesforce_id == "00Q1"


def test_judge_contacts_keeps_the_newest_version_of_each_contact(shipped: Configuration) -> None:
    """Given two versions of one contact, only the newest is judged."""
    old = SourceContact("1001", {**QUALIFIED, "budget": "10"}, 1_000)
    new = SourceContact("1001", dict(QUALIFIED), 2_000)
    [decision] = judge_contacts([new, old], shipped, SCHEMA, {})
    assert (decision.modified_at_ms, decision.outcome) == (2_000, Outcome.TO_PUSH)


def test_passing_the_gate_counts_salesforce_refusals_as_passed(shipped: Configuration) -> None:
    """A lead refused by Salesforce had passed the gate; one refused by a criterion had not."""
    rejected = judge(contact(budget="10"), shipped, SCHEMA, None)
    assert not passes_gate(rejected)
    refused = replace(rejected, stage=RejectStage.SALESFORCE)
    assert passes_gate(refused)


@pytest.mark.parametrize(
    "title",
    [
        "Chief Executive Officer",
        "Co-founder & CEO",
        "co-founder and ceo",
        "CHIEF INFORMATION OFFICER",
    ],
)
def test_synonyms_read_spelled_out_titles_as_the_short_ones(
    shipped: Configuration, title: str
) -> None:
    """The shipped BANT rules read "Chief Executive Officer" and "Co-founder & CEO" as CEO."""
    decision = judge(contact(jobtitle=title), shipped, SCHEMA, None)
    assert decision.outcome is Outcome.TO_PUSH
    assert decision.payload is not None
    assert decision.payload["Title"] == title  # Salesforce gets the title as typed


def test_a_title_that_is_no_synonym_still_fails_and_says_what_it_read(
    shipped: Configuration,
) -> None:
    """A title the table does not know is rejected with the title as typed."""
    decision = judge(contact(jobtitle="Chief Technology Officer"), shipped, SCHEMA, None)
    assert decision.outcome is Outcome.REJECTED
    assert [r.message for r in decision.reasons] == [
        'authority: job title "Chief Technology Officer" is not one of CEO, CFO, CIO'
    ]


def test_without_the_synonym_table_the_spelled_out_title_is_rejected(tmp_path: Path) -> None:
    """Before synonyms, "Chief Executive Officer" failed authority: the table is what changed."""
    rules = (SHIPPED / "qualification.yaml").read_text(encoding="utf-8")
    rules = rules.replace("    synonyms: job_titles  #", "    #")
    config = with_files(tmp_path, qualification=rules)
    decision = judge(contact(jobtitle="Chief Executive Officer"), config, SCHEMA, None)
    assert [r.criterion for r in decision.reasons] == ["authority"]


# -- incomplete leads ---------------------------------------------------------------------------
def test_a_qualified_lead_without_a_last_name_syncs_with_the_placeholder_flagged(
    shipped: Configuration,
) -> None:
    """The shipped map sends "[not provided]" for a missing last name and flags it."""
    decision = judge(contact(lastname=None), shipped, SCHEMA, None)
    assert decision.outcome is Outcome.TO_PUSH
    assert decision.payload is not None
    assert decision.payload["LastName"] == "[not provided]"
    [flag] = decision.flags
    assert (flag.field, flag.code, flag.action) == ("LastName", "REQUIRED", FlagAction.PLACEHOLDER)
    assert flag.message == 'LastName: required, but HubSpot property "lastname" is empty'


def test_a_placeholder_is_not_sent_over_an_existing_lead(shipped: Configuration) -> None:
    """Once the Lead exists the placeholder is left out (a rep may have typed the value)."""
    first = judge(contact(company=""), shipped, SCHEMA, None)
    assert first.payload is not None
    assert first.payload["Company"] == "[not provided]"
    later = judge(contact(company="", phone="+1 555"), shipped, SCHEMA, synced("MQL"))
    assert later.outcome is Outcome.TO_PUSH
    assert later.payload is not None
    assert "Company" not in later.payload
    assert [f.field for f in later.flags] == ["Company"]


def test_a_qualified_lead_with_a_malformed_email_syncs_without_it(shipped: Configuration) -> None:
    """The shipped map leaves a malformed address out, flagged, instead of holding the lead."""
    decision = judge(contact(email="ana@@example.com"), shipped, SCHEMA, None)
    assert decision.outcome is Outcome.TO_PUSH
    assert decision.payload is not None
    assert "Email" not in decision.payload
    [flag] = decision.flags
    assert (flag.field, flag.code, flag.action) == ("Email", "INVALID_EMAIL", FlagAction.OMITTED)


def test_incomplete_reject_holds_the_lead_back_as_before(tmp_path: Path) -> None:
    """With incomplete: reject a missing last name is a mapping reject, no flag."""
    fields = (SHIPPED / "fields.yaml").read_text(encoding="utf-8")
    fields = fields.replace("incomplete: placeholder", "incomplete: reject")
    config = with_files(tmp_path, fields=fields)
    decision = judge(contact(lastname=None), config, SCHEMA, None)
    assert (decision.outcome, decision.stage) == (Outcome.REJECTED, RejectStage.MAPPING)
    assert [r.code for r in decision.reasons] == ["REQUIRED"]
    assert decision.flags == ()


def test_an_unqualified_lead_is_rejected_whatever_it_is_missing(shipped: Configuration) -> None:
    """Flags never let an unqualified lead through: it is rejected for its criteria."""
    decision = judge(contact(lastname=None, budget="10"), shipped, SCHEMA, None)
    assert decision.outcome is Outcome.REJECTED
    assert [r.criterion for r in decision.reasons] == ["budget"]


# -- stage moves --------------------------------------------------------------------------------
def test_a_new_lead_starts_at_its_stage(shipped: Configuration) -> None:
    """A lead never pushed before starts at the stage its data asks for."""
    decision = judge(contact(), shipped, SCHEMA, None)
    assert decision.transition is not None
    assert (decision.transition.verdict, decision.lead_stage) == (MoveVerdict.FIRST, "MQL")
    assert decision.payload is not None
    assert decision.payload["Status"] == "Open - Not Contacted"


def test_moving_forward_along_the_funnel_is_recorded(shipped: Configuration) -> None:
    """MQL → SQL is forward: the Status moves and the decision records it."""
    decision = judge(contact(lifecyclestage="salesqualifiedlead"), shipped, SCHEMA, synced("MQL"))
    assert decision.transition is not None
    assert decision.transition.verdict is MoveVerdict.FORWARD
    assert decision.lead_stage == "SQL"
    assert decision.payload is not None
    assert decision.payload["Status"] == "Working - Contacted"


def test_a_forbidden_regression_keeps_the_stage_and_syncs_the_rest(
    shipped: Configuration,
) -> None:
    """SQL → MQL under regression: forbid: the Status is not sent, the lead stays at SQL."""
    decision = judge(contact(budget="95000"), shipped, SCHEMA, synced("SQL"))
    assert decision.outcome is Outcome.TO_PUSH
    assert decision.transition is not None
    assert decision.transition.verdict is MoveVerdict.FORBIDDEN
    assert decision.transition.text() == "SQL → MQL: forbidden (stays SQL)"
    assert decision.lead_stage == "SQL"
    assert decision.payload is not None
    assert "Status" not in decision.payload
    assert decision.payload["Budget__c"] == 95000


def test_an_allowed_move_out_of_the_funnel_is_not_a_regression(shipped: Configuration) -> None:
    """SQL → Disqualified is listed under allowed: it moves."""
    decision = judge(contact(hs_lead_status="UNQUALIFIED"), shipped, SCHEMA, synced("SQL"))
    assert decision.transition is not None
    assert decision.transition.verdict is MoveVerdict.ALLOWED
    assert decision.payload is not None
    assert decision.payload["Status"] == "Closed - Not Converted"


def test_a_held_regression_rejects_the_lead_for_review(tmp_path: Path) -> None:
    """With regression: hold, SQL → MQL holds the lead back with a stage reason."""
    stages = (SHIPPED / "stages.yaml").read_text(encoding="utf-8")
    config = with_files(tmp_path, stages=stages.replace("regression: forbid", "regression: hold"))
    decision = judge(contact(), config, SCHEMA, synced("SQL"))
    assert (decision.outcome, decision.stage) == (Outcome.REJECTED, RejectStage.MAPPING)
    assert decision.lead_stage == "SQL"
    [reason] = decision.reasons
    assert (reason.criterion, reason.code) == ("stage", "STAGE_REGRESSION")
    assert reason.message.startswith("stage: SQL → MQL would move the lead backwards")


def test_an_allowed_regression_moves_back_and_says_so(tmp_path: Path) -> None:
    """With regression: allow, SQL → MQL moves the Status back, recorded as such."""
    stages = (SHIPPED / "stages.yaml").read_text(encoding="utf-8")
    config = with_files(tmp_path, stages=stages.replace("regression: forbid", "regression: allow"))
    decision = judge(contact(), config, SCHEMA, synced("SQL"))
    assert decision.transition is not None
    assert decision.transition.verdict is MoveVerdict.REGRESSION_ALLOWED
    assert decision.payload is not None
    assert decision.payload["Status"] == "Open - Not Contacted"


# -- tiers and scores ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiers() -> Configuration:
    return load_configuration(SHIPPED, rules_file=SHIPPED / "examples/qualification-tiers.yaml")


@pytest.fixture(scope="module")
def score() -> Configuration:
    return load_configuration(SHIPPED, rules_file=SHIPPED / "examples/qualification-score.yaml")


def test_a_lead_meeting_everything_is_hot_with_its_rating(tiers: Configuration) -> None:
    """Every criterion met: tier Hot, Rating Hot in the payload, recorded on the decision."""
    decision = judge(contact(), tiers, SCHEMA, None)
    assert (decision.outcome, decision.tier) == (Outcome.TO_PUSH, "Hot")
    assert decision.payload is not None
    assert decision.payload["Rating"] == "Hot"


def test_fit_without_budget_is_warm_and_still_syncs(tiers: Configuration) -> None:
    """The right person with the right problem but no budget is Warm, synced as Warm."""
    decision = judge(contact(budget="TBD", timeline_days="365"), tiers, SCHEMA, None)
    assert (decision.outcome, decision.tier) == (Outcome.TO_PUSH, "Warm")
    assert decision.payload is not None
    assert decision.payload["Rating"] == "Warm"


def test_a_raw_lead_is_held_back_with_what_the_next_tier_needs(tiers: Configuration) -> None:
    """Not the right person: tier Raw, not synced; the reason names what Warm needs."""
    decision = judge(contact(jobtitle="Analyst"), tiers, SCHEMA, None)
    assert (decision.outcome, decision.tier) == (Outcome.REJECTED, "Raw")
    assert [r.message for r in decision.reasons] == [
        'tier: graded "Raw", which does not sync; "Warm" needs authority',
        'authority: job title "Analyst" is not one of CEO, CFO, CIO',
    ]


def test_a_score_tier_sets_the_stage_it_names(score: Configuration) -> None:
    """Every criterion met: 100 points, tier SQL, stage SQL and Rating Hot."""
    decision = judge(contact(), score, SCHEMA, None)
    assert (decision.tier, decision.score, decision.lead_stage) == ("SQL", 100, "SQL")
    assert decision.payload is not None
    assert (decision.payload["Status"], decision.payload["Rating"]) == (
        "Working - Contacted",
        "Hot",
    )


def test_a_score_below_every_synced_tier_shows_score_threshold_and_points(
    score: Configuration,
) -> None:
    """45 points: tier MQL, not synced; the reason shows 45, SAL's 55, what gave and withheld."""
    decision = judge(contact(budget="10", industry="RETAIL"), score, SCHEMA, None)
    assert (decision.outcome, decision.tier, decision.score) == (Outcome.REJECTED, "MQL", 45)
    assert [r.criterion for r in decision.reasons] == ["tier", "score", "budget", "need"]
    assert decision.reasons[1].message == (
        'score: 45 is below 55, the least "SAL" needs; points given: authority +25, '
        "timeline +20; withheld: budget 25, need 30"
    )


def test_a_tier_stage_that_is_not_in_the_stage_map_is_refused(tmp_path: Path) -> None:
    """A tier naming a stage stages.yaml lacks is a configuration error at the tier's line."""
    rules = (SHIPPED / "examples/qualification-score.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        with_files(tmp_path, qualification=rules.replace("stage: SAL", "stage: Sales"))
    [problem] = caught.value.problems
    assert problem.message == 'tier "SAL": "Sales" is not a stage of stages.yaml'
    assert problem.location.path.endswith("qualification.yaml")
    assert problem.location.line is not None


def test_a_tier_setting_a_mapped_field_is_refused(tmp_path: Path) -> None:
    """A tier may not set a field fields.yaml sets: one of the two would silently lose."""
    rules = (SHIPPED / "examples/qualification-tiers.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        with_files(tmp_path, qualification=rules.replace("{Rating: Warm}", "{Title: Warm}"))
    [problem] = caught.value.problems
    assert problem.message == 'tier "Warm" sets Title, which fields.yaml also sets'
