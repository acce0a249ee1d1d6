"""Unit tests for the stage map: HubSpot lifecycle stage / lead status → Salesforce Status."""

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError, ConfigProblem
from crmbridge.mapping import FieldMapping, load_mapping
from crmbridge.model import ObjectSchema, SourceContact

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"

FIELDS = """\
external_id: HubSpot_Contact_Id__c
fields:
  LastName: {from: lastname, required: true}
"""

CUSTOM = """\
target: Status
stages:
  - name: Hot
    when: {hs_lead_status: HOT}
    status: Hot lead
  - name: Warm
    when: {hs_lead_status: [WARM, CONNECTED]}
    status: Warm lead
  - name: Partner SQL
    when: {lifecyclestage: salesqualifiedlead, lead_source_type: partner}
    status: Partner
  - name: Custom stage id
    when: {lifecyclestage: 1234567}
    status: Custom
  - name: Not yet triaged
    when: {hs_lead_status: [null, NEW]}
    status: Triage
default: Open
"""


def contact(**props: str | None) -> SourceContact:
    return SourceContact("1", {"lastname": "Doe", **props}, modified_at_ms=0)


def load(tmp_path: Path, stages: str) -> FieldMapping:
    (tmp_path / "fields.yaml").write_text(FIELDS, encoding="utf-8")
    (tmp_path / "stages.yaml").write_text(stages, encoding="utf-8")
    return load_mapping(tmp_path)


def problems_of(tmp_path: Path, stages: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, stages)
    return caught.value.problems


@pytest.fixture
def custom(tmp_path: Path) -> FieldMapping:
    return load(tmp_path, CUSTOM)


def test_first_matching_stage_wins(custom: FieldMapping) -> None:
    """When several stages match, the one listed first decides."""
    c = contact(
        hs_lead_status="HOT", lifecyclestage="salesqualifiedlead", lead_source_type="partner"
    )
    assert custom.stage_of(c) == "Hot lead"


def test_list_value_means_any_of(custom: FieldMapping) -> None:
    """A list in `when` matches any of its values."""
    assert custom.stage_of(contact(hs_lead_status="CONNECTED")) == "Warm lead"


def test_when_keys_are_all_required(custom: FieldMapping) -> None:
    """Every key of `when` must match; one matching key is not enough."""
    assert custom.stage_of(contact(lifecyclestage="salesqualifiedlead", hs_lead_status="OPEN")) == (
        "Open"
    )
    both = contact(
        lifecyclestage="salesqualifiedlead", lead_source_type="partner", hs_lead_status="X"
    )
    assert custom.stage_of(both) == "Partner"


def test_default_applies_when_nothing_matches(custom: FieldMapping) -> None:
    """A contact no stage matches gets the default."""
    assert custom.stage_of(contact(hs_lead_status="UNQUALIFIED")) == "Open"


def test_numeric_custom_stage_id_matches(custom: FieldMapping) -> None:
    """A custom lifecycle stage id written as a YAML number matches HubSpot's string id."""
    assert custom.stage_of(contact(lifecyclestage="1234567", hs_lead_status="OPEN")) == "Custom"


def test_null_in_a_list_matches_an_empty_property(custom: FieldMapping) -> None:
    """null in a `when` list matches a property that is unset or blank."""
    assert custom.stage_of(contact(hs_lead_status=None)) == "Triage"
    assert custom.stage_of(contact(hs_lead_status="  ")) == "Triage"


def test_matching_ignores_case_and_spaces(custom: FieldMapping) -> None:
    """Stage values match whatever their case and surrounding spaces."""
    assert custom.stage_of(contact(hs_lead_status=" hot ")) == "Hot lead"


def test_no_default_means_no_status(tmp_path: Path) -> None:
    """Without a default, an unmatched contact gets no Status and none is sent."""
    mapping = load(tmp_path, "stages:\n  - name: A\n    when: {x: y}\n    status: Open\n")
    assert mapping.stage_of(contact()) is None
    result = mapping.map(contact(), ObjectSchema("Lead", {}))
    assert result.lead is not None
    assert "Status" not in result.lead.fields


def test_stage_properties_are_source_properties(custom: FieldMapping) -> None:
    """Every property a stage reads is listed among the mapping's source properties."""
    assert {"hs_lead_status", "lifecyclestage", "lead_source_type"} <= custom.source_properties


def test_stage_for_names_the_matching_stage(custom: FieldMapping) -> None:
    """The stage map tells which named stage matched."""
    assert custom.stage_map is not None
    stage = custom.stage_map.stage_for(contact(hs_lead_status="WARM"))
    assert stage is not None
    assert stage.name == "Warm"


def test_missing_stages_file_means_no_stage_map(tmp_path: Path) -> None:
    """Without stages.yaml the mapping sets no stage."""
    (tmp_path / "fields.yaml").write_text(FIELDS, encoding="utf-8")
    mapping = load_mapping(tmp_path)
    assert mapping.stage_map is None
    assert mapping.stage_of(contact(lifecyclestage="lead")) is None


@pytest.mark.parametrize(
    ("props", "status"),
    [
        ({"lifecyclestage": "salesqualifiedlead"}, "Working - Contacted"),
        ({"lifecyclestage": "lead", "hs_lead_status": "IN_PROGRESS"}, "Working - Contacted"),
        ({"lifecyclestage": "marketingqualifiedlead"}, "Open - Not Contacted"),
        ({"lifecyclestage": "subscriber"}, "Open - Not Contacted"),
        ({}, "Open - Not Contacted"),
    ],
)
def test_shipped_stage_map(props: dict[str, str], status: str) -> None:
    """The shipped stages.yaml turns SQL/SAL/MQL into the reference org's Status values."""
    assert load_mapping(SHIPPED).stage_of(contact(**props)) == status


def test_stage_without_status_is_refused(tmp_path: Path) -> None:
    """A stage without status is reported at its line with a hint."""
    [problem] = problems_of(tmp_path, "stages:\n  - name: A\n    when: {x: y}\n")
    assert str(problem.location) == f"{tmp_path / 'stages.yaml'}:2"
    assert problem.message == 'this stage has no "status"'
    assert problem.hint


def test_empty_when_is_refused(tmp_path: Path) -> None:
    """A stage with an empty `when` is refused: the catch-all is `default`."""
    [problem] = problems_of(tmp_path, "stages:\n  - name: A\n    when: {}\n    status: Open\n")
    assert problem.location.line == 3
    assert problem.hint is not None
    assert "default" in problem.hint


def test_duplicate_stage_names_are_refused(tmp_path: Path) -> None:
    """Two stages with one name are refused at the second."""
    text = "stages:\n" + "  - name: A\n    when: {x: y}\n    status: Open\n" * 2
    [problem] = problems_of(tmp_path, text)
    assert problem.location.line == 5
    assert problem.message == 'stage "A" appears twice'


def test_non_text_stage_value_is_refused(tmp_path: Path) -> None:
    """A float (or true/false) stage value is refused with a hint to quote it."""
    [problem] = problems_of(
        tmp_path, "stages:\n  - name: A\n    when: {x: 1.5}\n    status: Open\n"
    )
    assert problem.location.line == 3
    assert problem.hint == "quote it"


def test_misspelt_stage_key_is_refused(tmp_path: Path) -> None:
    """An unknown key in a stage is reported at its line with a did-you-mean hint."""
    text = "stages:\n  - name: A\n    when: {x: y}\n    stauts: Open\n"
    problems = problems_of(tmp_path, text)
    assert (4, 'unknown key "stauts" in this stage') in [
        (p.location.line, p.message) for p in problems
    ]


def test_stages_must_be_a_list(tmp_path: Path) -> None:
    """A mapping where the stage list belongs is refused at its line."""
    [problem] = problems_of(tmp_path, "target: Status\nstages: {name: A}\n")
    assert problem.location.line == 2
