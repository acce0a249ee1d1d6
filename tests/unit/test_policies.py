"""Reading the admins' policies (update, incomplete, moves, tiers, synonyms) and what the files
refuse, each at its line with a hint; the update policy's pure rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.configuration import Configuration, load_configuration
from crmbridge.errors import ConfigError, ConfigProblem
from crmbridge.mapping.policies import UpdatePolicy, fields_to_send, needs_current_values
from crmbridge.testing import reference_lead_schema

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"


def configure(tmp_path: Path, **replacements: tuple[str, str]) -> Configuration:
    """The shipped files with ``file=(old, new)`` text replaced, loaded."""
    for name in ("fields", "stages", "qualification"):
        text = (SHIPPED / f"{name}.yaml").read_text(encoding="utf-8")
        if name in replacements:
            old, new = replacements[name]
            assert old in text
            text = text.replace(old, new)
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return load_configuration(tmp_path)


def refused(tmp_path: Path, **replacements: tuple[str, str]) -> ConfigProblem:
    with pytest.raises(ConfigError) as caught:
        configure(tmp_path, **replacements)
    [problem] = caught.value.problems
    return problem


def line_of(tmp_path: Path, name: str, text: str) -> int:
    lines = (tmp_path / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


# -- the update policy ------------------------------------------------------------------------
PAYLOAD = {"HubSpot_Contact_Id__c": "7", "Title": "CEO", "Phone": "555", "LeadSource": "Web"}
POLICIES = {
    "Title": UpdatePolicy.IF_BLANK,
    "LeadSource": UpdatePolicy.ON_CREATE,
    "Phone": UpdatePolicy.NEVER,
}


def test_a_new_lead_gets_every_field_but_never_ones() -> None:
    """Creating a Lead sends if_blank and on_create fields; never ones are never sent."""
    assert fields_to_send(PAYLOAD, POLICIES, None) == {
        "HubSpot_Contact_Id__c": "7",
        "Title": "CEO",
        "LeadSource": "Web",
    }


def test_an_existing_lead_keeps_what_a_rep_typed() -> None:
    """On update, a filled if_blank field and every on_create field are left alone."""
    current = {"Title": "Chief Executive", "LeadSource": "Partner Referral"}
    assert fields_to_send(PAYLOAD, POLICIES, current) == {"HubSpot_Contact_Id__c": "7"}


@pytest.mark.parametrize("blank", [None, "", "   ", "[not provided]"])
def test_a_blank_or_placeholder_field_is_filled(blank: str | None) -> None:
    """An if_blank field that is empty, or holds the placeholder, is filled on update."""
    assert fields_to_send(PAYLOAD, POLICIES, {"Title": blank})["Title"] == "CEO"


def test_only_if_blank_and_on_create_need_a_query() -> None:
    """never alone needs no current values; if_blank or on_create does."""
    assert not needs_current_values({"Phone": UpdatePolicy.NEVER})
    assert needs_current_values({"Title": UpdatePolicy.IF_BLANK})
    assert needs_current_values({"LeadSource": UpdatePolicy.ON_CREATE})


def test_update_policies_are_read_per_field(tmp_path: Path) -> None:
    """update: if_blank in fields.yaml is the field's policy; unlisted fields are always."""
    config = configure(
        tmp_path,
        fields=("\n  Title: {from: jobtitle,", "\n  Title: {update: if_blank, from: jobtitle,"),
    )
    assert dict(config.mapping.update_policies) == {"Title": UpdatePolicy.IF_BLANK}


def test_an_unknown_update_policy_is_refused_with_the_choices(tmp_path: Path) -> None:
    """update: sometimes is refused at its line, listing the four policies."""
    problem = refused(
        tmp_path,
        fields=("\n  Title: {from: jobtitle,", "\n  Title: {update: sometimes, from: jobtitle,"),
    )
    assert problem.message == 'field "Title": "update" cannot be "sometimes"'
    assert problem.hint == "valid values: always, if_blank, on_create, never"
    assert problem.location.line == line_of(tmp_path, "fields", "update: sometimes")


# -- what the describe refuses ----------------------------------------------------------------
def preflight(config: Configuration) -> list[str]:
    return [p.message for p in config.check_schema(reference_lead_schema())]


def test_a_placeholder_cannot_go_into_a_number_field(tmp_path: Path) -> None:
    """incomplete: placeholder on a currency field is refused against the describe."""
    config = configure(
        tmp_path,
        fields=("on_parse_error: omit}\n  Timeline", "incomplete: placeholder}\n  Timeline"),
    )
    assert preflight(config) == [
        '"Budget__c" is a currency field: the placeholder text cannot go in it'
    ]


def test_omitting_a_field_salesforce_requires_is_refused(tmp_path: Path) -> None:
    """incomplete: omit on LastName would make Salesforce refuse the create: refused."""
    config = configure(
        tmp_path,
        fields=(
            "required: true,\n             incomplete: placeholder",
            "required: true,\n             incomplete: omit",
        ),
    )
    assert preflight(config) == [
        'Salesforce needs "LastName" to create a record: a lead without it would be refused'
    ]


def test_never_writing_a_field_salesforce_requires_is_refused(tmp_path: Path) -> None:
    """update: never on Company would leave every create without it: refused."""
    config = configure(
        tmp_path,
        fields=(
            "required: true, incomplete: placeholder}",
            "required: true, incomplete: placeholder, update: never}",
        ),
    )
    assert preflight(config) == [
        '"Company" is never sent, but Salesforce needs it to create a record'
    ]


def test_a_tier_value_salesforce_refuses_is_found_before_a_pass(tmp_path: Path) -> None:
    """A tier setting Rating: Scorching (not a picklist value) is a preflight problem."""
    rules = (SHIPPED / "examples/qualification-tiers.yaml").read_text(encoding="utf-8")
    (tmp_path / "q.yaml").write_text(rules.replace("{Rating: Hot}", "{Rating: Scorching}"))
    config = load_configuration(SHIPPED, rules_file=tmp_path / "q.yaml")
    assert preflight(config) == [
        '"Scorching" is not an active value of the restricted picklist "Rating"'
    ]


# -- stages.yaml moves --------------------------------------------------------------------------
def test_moves_naming_an_unknown_stage_are_refused(tmp_path: Path) -> None:
    """order: [.., Won] names no stage: refused at its line with the stages listed."""
    problem = refused(tmp_path, stages=("order: [default, MQL, SAL, SQL]", "order: [MQL, Won]"))
    assert problem.message == '"moves": "Won" is not a stage of stages.yaml'
    assert problem.hint is not None
    assert "Disqualified, Recycled, SQL, SAL, MQL, default" in problem.hint
    assert problem.location.line == line_of(tmp_path, "stages", "order: [MQL, Won]")


def test_a_stage_cannot_be_called_default(tmp_path: Path) -> None:
    """The name default stands for default:, so no stage may take it."""
    with pytest.raises(ConfigError) as caught:
        configure(tmp_path, stages=("- name: Disqualified", "- name: default"))
    first = caught.value.problems[0]
    assert first.message == 'a stage cannot be named "default": the name stands for default:'
    assert first.location.line == line_of(tmp_path, "stages", "- name: default")


def test_an_unknown_regression_choice_is_refused(tmp_path: Path) -> None:
    """regression: ignore is refused with forbid, allow, hold."""
    problem = refused(tmp_path, stages=("regression: forbid", "regression: ignore"))
    assert problem.message == '"moves": "regression" cannot be "ignore"'
    assert problem.hint == "valid values: forbid, allow, hold"


# -- qualification.yaml: synonyms and tiers -----------------------------------------------------
def test_a_criterion_naming_a_missing_synonym_table_is_refused(tmp_path: Path) -> None:
    """synonyms: titles (no such table) is refused at the criterion's line, naming the tables."""
    problem = refused(tmp_path, qualification=("synonyms: job_titles  #", "synonyms: titles  #"))
    assert problem.message == 'criterion "authority": no synonym table "titles"'
    assert problem.hint == 'did you mean "job_titles"? tables under synonyms:: job_titles'


def test_one_variant_under_two_values_is_refused(tmp_path: Path) -> None:
    """ "Chief Executive Officer" listed under CEO and CFO is refused (case does not count)."""
    problem = refused(
        tmp_path,
        qualification=(
            "CFO: [Chief Financial Officer]",
            "CFO: [Chief Financial Officer, chief executive officer]",
        ),
    )
    assert problem.message == (
        'synonym table "job_titles": "chief executive officer" is a synonym of both "CEO" and "CFO"'
    )


def tiers_file(tmp_path: Path, old: str, new: str) -> ConfigProblem:
    rules = (SHIPPED / "examples/qualification-tiers.yaml").read_text(encoding="utf-8")
    assert old in rules
    (tmp_path / "q.yaml").write_text(rules.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_configuration(SHIPPED, rules_file=tmp_path / "q.yaml")
    [problem] = caught.value.problems
    return problem


def test_a_tier_requiring_an_unknown_criterion_is_refused(tmp_path: Path) -> None:
    """requires: [budgett] names no top-level criterion: refused with a close match."""
    problem = tiers_file(tmp_path, "requires: [authority, need]", "requires: [authority, nead]")
    assert problem.message == 'tier "Warm": "nead" is not a top-level criterion'
    assert problem.hint is not None
    assert problem.hint.startswith('did you mean "need"?')


def test_min_score_without_points_is_refused(tmp_path: Path) -> None:
    """A score threshold with no criterion giving points could never be met sensibly."""
    problem = tiers_file(tmp_path, "requires: [authority, need]", "min_score: 50")
    assert problem.message == 'tier "Warm": min_score needs criteria with points'


def test_a_tier_after_the_catch_all_is_refused(tmp_path: Path) -> None:
    """A tier below the one that takes every lead left could never be reached."""
    problem = tiers_file(tmp_path, "    sync: false\n", "    sync: false\n  - name: Cold\n")
    assert problem.message == 'tier "Cold" comes after "Raw", which takes every lead left'


def test_tiers_that_never_sync_are_refused(tmp_path: Path) -> None:
    """Tiers that all say sync: false would hold every lead back."""
    rules = "name: x\ncriteria:\n  - {name: a, property: email, op: present}\n"
    rules += "tiers:\n  - {name: A, requires: [a], sync: false}\n"
    (tmp_path / "q.yaml").write_text(rules, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_configuration(SHIPPED, rules_file=tmp_path / "q.yaml")
    assert [p.message for p in caught.value.problems] == [
        "no tier syncs: every lead would be held back"
    ]


def test_match_with_tiers_is_refused(tmp_path: Path) -> None:
    """With tiers, match: has no effect: saying so beats silently ignoring it."""
    problem = tiers_file(tmp_path, "name: BANT tiers\n", "name: BANT tiers\nmatch: any\n")
    assert (
        problem.message == 'with "tiers", the tiers decide which leads sync: "match" has no effect'
    )
