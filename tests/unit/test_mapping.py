"""Unit tests for the field map: loading, mapping contacts onto Lead fields, and preflight."""

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from crmbridge.errors import ConfigError, ConfigProblem
from crmbridge.mapping import FieldMapping, load_mapping
from crmbridge.mapping import preflight as check_map
from crmbridge.mapping.policies import Incomplete
from crmbridge.model import FieldSpec, ObjectSchema, PicklistValue, Reason, SourceContact
from crmbridge.testing import INDUSTRIES, picklist, reference_lead_schema

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"

SCHEMA = reference_lead_schema()

GOOD = {
    "firstname": " Jane ",
    "lastname": "Doe",
    "company": "Acme  Machinery\nInc",
    "email": " Jane.Doe@Example.com ",
    "jobtitle": "CEO",
    "phone": "+1 555 0100",
    "industry": "MACHINERY",
    "budget": "$75,000.50",
    "timeline_days": "90",
    "pain_point": "No visibility",
    "need": "Our supply chain has no visibility",
    "lifecyclestage": "salesqualifiedlead",
    "hs_lead_status": "NEW",
}


def contact(
    overrides: Mapping[str, str | None] | None = None, **props: str | None
) -> SourceContact:
    return SourceContact("101", {**GOOD, **(overrides or {}), **props}, modified_at_ms=0)


@pytest.fixture(scope="module")
def shipped() -> FieldMapping:
    return load_mapping(SHIPPED)


@pytest.fixture(scope="module")
def rejecting(shipped: FieldMapping) -> FieldMapping:
    """The shipped map with every field's ``incomplete`` back to ``reject`` (the default)."""
    return FieldMapping(
        target_object=shipped.target_object,
        external_id_field=shipped.external_id_field,
        rules=tuple(replace(rule, incomplete=Incomplete.REJECT) for rule in shipped.rules),
        stage_map=shipped.stage_map,
        options=shipped.options,
        locations=shipped.locations,
    )


def write(tmp_path: Path, fields: str, stages: str | None = None) -> Path:
    (tmp_path / "fields.yaml").write_text(fields, encoding="utf-8")
    if stages is not None:
        (tmp_path / "stages.yaml").write_text(stages, encoding="utf-8")
    return tmp_path


BASE = """\
object: Lead
external_id: HubSpot_Contact_Id__c
fields:
  LastName: {from: lastname, required: true}
  Company: {from: company, required: true}
"""


def mapped(
    mapping: FieldMapping, c: SourceContact, schema: ObjectSchema = SCHEMA
) -> dict[str, object]:
    result = mapping.map(c, schema)
    assert result.reasons == ()
    assert result.lead is not None
    return dict(result.lead.fields)


def only_reason(mapping: FieldMapping, c: SourceContact, schema: ObjectSchema = SCHEMA) -> Reason:
    result = mapping.map(c, schema)
    assert result.lead is None
    [reason] = result.reasons
    return reason


def problems_of(tmp_path: Path, fields: str, stages: str | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_mapping(write(tmp_path, fields, stages))
    return caught.value.problems


# --- the shipped mapping ----------------------------------------------------------------------


def test_shipped_mapping_describes_the_reference_org(shipped: FieldMapping) -> None:
    """The shipped map targets Lead, upserts on the HubSpot id and reads the expected properties."""
    assert shipped.target_object == "Lead"
    assert shipped.external_id_field == "HubSpot_Contact_Id__c"
    assert shipped.source_properties == frozenset(
        {"firstname", "lastname", "company", "email", "jobtitle", "phone", "industry", "budget",
         "timeline_days", "pain_point", "need", "lifecyclestage", "hs_lead_status"}
    )  # fmt: skip


def test_shipped_mapping_passes_preflight_against_the_reference_org(shipped: FieldMapping) -> None:
    """The shipped map has no problems against the reference Lead describe."""
    assert check_map(shipped, SCHEMA) == []


def test_good_contact_maps_to_the_full_payload(shipped: FieldMapping) -> None:
    """A complete contact becomes exactly the expected Lead payload."""
    assert mapped(shipped, contact()) == {
        "HubSpot_Contact_Id__c": "101",
        "LastName": "Doe",
        "FirstName": "Jane",
        "Company": "Acme Machinery Inc",
        "Email": "jane.doe@example.com",
        "Title": "CEO",
        "Phone": "+1 555 0100",
        "Industry": "Machinery",
        "Budget__c": 75000.5,
        "Timeline_Days__c": 90,
        "Pain_Point__c": "No visibility",
        "Description": "Our supply chain has no visibility",
        "LeadSource": "Web",
        "Status": "Working - Contacted",
    }


def test_payload_is_json_ready_with_native_numbers(shipped: FieldMapping) -> None:
    """Currency comes out as a number and Number(18,0) as an int, so json.dumps just works."""
    fields = mapped(shipped, contact(budget="60000"))
    assert type(fields["Budget__c"]) is int
    assert type(fields["Timeline_Days__c"]) is int
    json.dumps(fields)


def test_external_id_is_always_the_contact_id(shipped: FieldMapping) -> None:
    """The external id field carries contact.id whatever the properties hold."""
    c = SourceContact("987654", dict(GOOD), modified_at_ms=0)
    assert mapped(shipped, c)["HubSpot_Contact_Id__c"] == "987654"


def test_missing_company_is_a_required_reason(rejecting: FieldMapping) -> None:
    """An empty required property gives a REQUIRED reason naming field and property."""
    assert only_reason(rejecting, contact(company="  ")) == Reason(
        criterion="mapping.Company",
        message='Company: required, but HubSpot property "company" is empty',
        code="REQUIRED",
        fields=("Company",),
    )


def test_all_problems_of_a_contact_come_at_once(rejecting: FieldMapping) -> None:
    """A contact with several problems gets one reason per field, in map order."""
    result = rejecting.map(contact(lastname=None, company=None, email="jane@"), SCHEMA)
    assert result.lead is None
    assert [(r.criterion, r.code) for r in result.reasons] == [
        ("mapping.LastName", "REQUIRED"),
        ("mapping.Company", "REQUIRED"),
        ("mapping.Email", "INVALID_EMAIL"),
    ]


def test_malformed_email_is_an_invalid_email_reason(rejecting: FieldMapping) -> None:
    """A malformed address is rejected with the value quoted."""
    reason = only_reason(rejecting, contact(email="jane@@example.com"))
    assert reason.code == "INVALID_EMAIL"
    assert reason.message == (
        'Email: "jane@@example.com" is not a valid e-mail address (HubSpot property "email")'
    )


def test_non_ascii_email_is_rejected_by_default(rejecting: FieldMapping) -> None:
    """A non-ASCII local part is rejected before Salesforce would refuse it."""
    reason = only_reason(rejecting, contact(email="jörg@example.de"))
    assert reason.code == "INVALID_EMAIL"
    assert "non-ASCII" in reason.message


def test_non_ascii_email_passes_when_the_mapping_allows_it(tmp_path: Path) -> None:
    """allow_international_email: true lets a non-ASCII local part through."""
    text = BASE.replace("fields:", "allow_international_email: true\nfields:")
    mapping = load_mapping(write(tmp_path, text + "  Email: {from: email, transforms: [email]}\n"))
    assert mapped(mapping, contact(email="jörg@example.de"))["Email"] == "jörg@example.de"


def test_long_company_is_truncated_where_the_mapping_says_so(shipped: FieldMapping) -> None:
    """With truncate: true an over-long value is cut to the describe's length."""
    assert mapped(shipped, contact(company="A" * 300))["Company"] == "A" * 255


def test_long_value_without_truncate_is_string_too_long(tmp_path: Path) -> None:
    """Without truncate an over-long value is a STRING_TOO_LONG reason, not a cut."""
    mapping = load_mapping(write(tmp_path, BASE))
    reason = only_reason(mapping, contact(company="A" * 300))
    assert reason.code == "STRING_TOO_LONG"
    assert reason.message == "Company: 300 characters, more than the 255 Salesforce allows"


def test_unlisted_industry_becomes_the_default(shipped: FieldMapping) -> None:
    """The shipped Industry map sends Other for a value it does not list."""
    assert mapped(shipped, contact(industry="MINING"))["Industry"] == "Other"


def test_value_map_matches_ignoring_case(shipped: FieldMapping) -> None:
    """A value_map key matches whatever the case of the HubSpot value."""
    assert mapped(shipped, contact(industry="retail"))["Industry"] == "Retail"


def test_unmapped_keep_hits_the_restricted_picklist(tmp_path: Path) -> None:
    """A kept value that is not an active picklist value is an INVALID_PICKLIST reason."""
    text = BASE + "  Industry: {from: industry, value_map: {RETAIL: Retail}, unmapped: keep}\n"
    reason = only_reason(load_mapping(write(tmp_path, text)), contact(industry="MINING"))
    assert reason == Reason(
        "mapping.Industry",
        'Industry: "MINING" is not an active value of the restricted picklist',
        "INVALID_PICKLIST",
        ("Industry",),
    )


def test_inactive_picklist_value_is_refused(tmp_path: Path) -> None:
    """A picklist value that exists but is inactive is refused like an unknown one."""
    industry = picklist("Industry", INDUSTRIES)
    retired = replace(industry, picklist_values=(PicklistValue("Retail", "Retail", active=False),))
    mapping = load_mapping(write(tmp_path, BASE + "  Industry: {from: industry}\n"))
    reason = only_reason(mapping, contact(industry="Retail"), reference_lead_schema(retired))
    assert reason.code == "INVALID_PICKLIST"


def test_unmapped_drop_leaves_the_field_out(tmp_path: Path) -> None:
    """unmapped: drop omits the field for a value the map does not list."""
    text = BASE + "  Industry: {from: industry, value_map: {RETAIL: Retail}, unmapped: drop}\n"
    assert "Industry" not in mapped(load_mapping(write(tmp_path, text)), contact(industry="X"))


def test_unmapped_reject_is_an_unmapped_value_reason(tmp_path: Path) -> None:
    """unmapped: reject turns an unlisted value into an UNMAPPED_VALUE reason."""
    text = BASE + "  Industry: {from: industry, value_map: {RETAIL: Retail}, unmapped: reject}\n"
    reason = only_reason(load_mapping(write(tmp_path, text)), contact(industry="MINING"))
    assert reason.code == "UNMAPPED_VALUE"
    assert reason.message == (
        'Industry: HubSpot value "MINING" of "industry" has no entry in the value_map'
    )


def test_unparseable_budget_is_omitted_in_the_shipped_map(shipped: FieldMapping) -> None:
    """The shipped map omits an unreadable budget, since the qualification gate judges it."""
    fields = mapped(shipped, contact(budget="TBD", timeline_days="ASAP"))
    assert "Budget__c" not in fields
    assert "Timeline_Days__c" not in fields


def test_unparseable_number_is_a_parse_error_by_default(tmp_path: Path) -> None:
    """With the default on_parse_error the raw value is quoted in a PARSE_ERROR reason."""
    mapping = load_mapping(
        write(tmp_path, BASE + "  Budget__c: {from: budget, transforms: [money]}\n")
    )
    assert only_reason(mapping, contact(budget="TBD")) == Reason(
        "mapping.Budget__c",
        'Budget__c: "TBD" is not a number (HubSpot property "budget")',
        "PARSE_ERROR",
        ("Budget__c",),
    )


def test_text_into_a_number_field_is_parsed(tmp_path: Path) -> None:
    """A numeric field without a parsing transform still gets a number (or a PARSE_ERROR)."""
    mapping = load_mapping(write(tmp_path, BASE + "  AnnualRevenue: {from: budget}\n"))
    assert mapped(mapping, contact(budget="1,250,000"))["AnnualRevenue"] == 1250000
    assert only_reason(mapping, contact(budget="lots")).code == "PARSE_ERROR"


def test_number_beyond_the_field_precision_is_refused(shipped: FieldMapping) -> None:
    """A number with more whole digits than Currency(16,2) allows is NUMBER_OUTSIDE_VALID_RANGE."""
    reason = only_reason(shipped, contact(budget="1000000000000000"))
    assert reason.code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert reason.message == (
        "Budget__c: 1000000000000000 has more than the 14 digits before the decimal point "
        "that Salesforce allows"
    )


@pytest.mark.parametrize("field", ["AnnualRevenue", "NumberOfEmployees", "Timeline_Days__c"])
def test_huge_numbers_are_refused_not_raised(tmp_path: Path, field: str) -> None:
    """A 60-digit number is a NUMBER_OUTSIDE_VALID_RANGE reason for any numeric field."""
    mapping = load_mapping(write(tmp_path, BASE + f"  {field}: {{from: budget}}\n"))
    assert only_reason(mapping, contact(budget="9" * 60)).code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_int_fields_are_32_bit(tmp_path: Path) -> None:
    """A Salesforce int field refuses a value beyond 32 bits."""
    mapping = load_mapping(write(tmp_path, BASE + "  NumberOfEmployees: {from: budget}\n"))
    assert mapped(mapping, contact(budget="2147483647"))["NumberOfEmployees"] == 2147483647
    assert only_reason(mapping, contact(budget="2147483648")).message == (
        "NumberOfEmployees: 2147483648 is outside the range of a Salesforce whole-number field "
        "(±2147483647)"
    )


def test_numbers_are_rounded_to_the_field_scale(shipped: FieldMapping) -> None:
    """Extra decimals are rounded half-up to the field's scale, as Salesforce stores them."""
    assert mapped(shipped, contact(budget="100.125"))["Budget__c"] == 100.13


def test_empty_optional_value_is_omitted(shipped: FieldMapping) -> None:
    """An empty optional property is left out of the payload, not sent as null."""
    fields = mapped(shipped, contact(phone="", firstname=None))
    assert "Phone" not in fields
    assert "FirstName" not in fields


def test_clear_when_empty_sends_null(tmp_path: Path) -> None:
    """clear_when_empty: true sends None for an empty property."""
    mapping = load_mapping(
        write(tmp_path, BASE + "  Phone: {from: phone, clear_when_empty: true}\n")
    )
    assert mapped(mapping, contact(phone=None))["Phone"] is None


def test_default_fills_an_empty_value(tmp_path: Path) -> None:
    """A default is used when the property is empty."""
    text = BASE.replace("{from: lastname, required: true}", '{from: lastname, default: "Unknown"}')
    assert (
        mapped(load_mapping(write(tmp_path, text)), contact(lastname=None))["LastName"] == "Unknown"
    )


def test_constant_is_always_sent(tmp_path: Path) -> None:
    """A constant field gets its value for every contact."""
    mapping = load_mapping(write(tmp_path, BASE + "  Rating: {value: Warm}\n"))
    assert mapped(mapping, contact())["Rating"] == "Warm"


def test_stage_map_sets_status(shipped: FieldMapping) -> None:
    """The stage map's pick is included in the payload under its target field."""
    assert mapped(shipped, contact(lifecyclestage="lead", hs_lead_status=None))["Status"] == (
        "Open - Not Contacted"
    )
    assert shipped.stage_of(contact(lifecyclestage="lead", hs_lead_status="CONNECTED")) == (
        "Working - Contacted"
    )


def test_stage_status_not_in_the_picklist_is_a_reason(shipped: FieldMapping) -> None:
    """A stage status the org deactivated is an INVALID_PICKLIST reason on Status."""
    status = picklist("Status", ("Open - Not Contacted",), required=True)
    reason = only_reason(shipped, contact(), reference_lead_schema(status))
    assert reason.criterion == "mapping.Status"
    assert reason.code == "INVALID_PICKLIST"


@pytest.mark.parametrize(
    "value", [None, "", " ", "\x00", "💥" * 5000, "null", "-", "1e999", "NaN", "$", "<>", "@"]
)
def test_bad_values_never_raise(shipped: FieldMapping, value: str | None) -> None:
    """Any value in any property gives a result (lead or reasons), never an exception."""
    result = shipped.map(contact(dict.fromkeys(GOOD, value)), SCHEMA)
    assert result.lead is not None or result.reasons


def test_fields_missing_from_the_schema_pass_through(shipped: FieldMapping) -> None:
    """map() works with a partial describe; preflight is where unknown fields are reported."""
    fields = mapped(shipped, contact(), ObjectSchema("Lead", {}))
    assert fields["Budget__c"] == 75000.5


# --- preflight (check_schema) -----------------------------------------------------------------


def preflight(
    tmp_path: Path, fields: str, schema: ObjectSchema = SCHEMA, stages: str | None = None
) -> list[ConfigProblem]:
    return check_map(load_mapping(write(tmp_path, fields, stages)), schema)


def test_preflight_unknown_field_suggests_the_close_one(tmp_path: Path) -> None:
    """An unknown field is reported at its line with a did-you-mean hint."""
    [problem] = preflight(tmp_path, BASE + "  Titel: {from: jobtitle}\n")
    assert str(problem.location) == f"{tmp_path / 'fields.yaml'}:6"
    assert problem.message == 'Lead has no field "Titel" (or this user cannot see it)'
    assert problem.hint is not None
    assert problem.hint.startswith('did you mean "Title"?')


def test_preflight_reports_fields_that_cannot_be_written(tmp_path: Path) -> None:
    """A field that is neither createable nor updateable is reported at its line."""
    [problem] = preflight(tmp_path, BASE + "  IsConverted: {value: false}\n")
    assert problem.location.line == 6
    assert problem.message == (
        '"IsConverted" cannot be written on create or update by this Salesforce user'
    )
    assert problem.hint


def test_preflight_reports_inactive_constant_picklist_value(tmp_path: Path) -> None:
    """A constant that is not an active value of a restricted picklist is reported."""
    [problem] = preflight(tmp_path, BASE + "  LeadSource: {value: Webinar}\n")
    assert problem.location.line == 6
    assert (
        problem.message
        == '"Webinar" is not an active value of the restricted picklist "LeadSource"'
    )
    assert problem.hint is not None
    assert "Web" in problem.hint


def test_preflight_points_at_the_bad_value_map_entry(tmp_path: Path) -> None:
    """A value_map output that the picklist refuses is reported at that entry's line."""
    text = BASE + (
        "  Industry:\n"
        "    from: industry\n"
        "    value_map:\n"
        "      RETAIL: Retail\n"
        "      LOGISTICS_AND_SUPPLY_CHAIN: Logistics\n"
    )
    [problem] = preflight(tmp_path, text)
    assert problem.location.line == 10
    assert '"Logistics"' in problem.message


def test_preflight_points_at_the_bad_stage_status(tmp_path: Path) -> None:
    """A stage status that is not an active Status value is reported in stages.yaml."""
    stages = (
        "target: Status\nstages:\n  - name: SQL\n    when: {lifecyclestage: x}\n    status: Hot\n"
    )
    [problem] = preflight(tmp_path, BASE, stages=stages)
    assert str(problem.location) == f"{tmp_path / 'stages.yaml'}:5"
    assert problem.message == '"Hot" is not an active value of the restricted picklist "Status"'


def test_preflight_reports_an_external_id_that_is_not_one(tmp_path: Path) -> None:
    """The upsert key must be an External ID field in the describe."""
    plain = FieldSpec("HubSpot_Contact_Id__c", "string", length=64)
    [problem] = preflight(tmp_path, BASE, reference_lead_schema(plain))
    assert problem.location.line == 2
    assert problem.message == '"HubSpot_Contact_Id__c" is not an External ID field on Lead'


def test_preflight_reports_an_unmapped_required_field(tmp_path: Path) -> None:
    """A field required on create that the map does not set is reported at fields:."""
    [problem] = preflight(
        tmp_path, BASE.replace("  LastName: {from: lastname, required: true}\n", "")
    )
    assert problem.location.line == 3
    assert problem.message == '"LastName" is required to create a Lead, but the map does not set it'
    assert problem.hint


def test_preflight_reports_a_required_field_that_may_be_left_out(tmp_path: Path) -> None:
    """A required-on-create field mapped without required/default is reported at its line."""
    [problem] = preflight(
        tmp_path, BASE.replace("{from: company, required: true}", "{from: company}")
    )
    assert problem.location.line == 5
    assert (
        problem.hint == 'add "required: true" (reject such contacts with a reason) or a "default:"'
    )


def test_preflight_reports_a_wrong_object(tmp_path: Path) -> None:
    """A map for another object than the describe's is reported at object:."""
    [problem] = preflight(tmp_path, BASE, ObjectSchema("Contact", SCHEMA.fields))
    assert problem.location.line == 1


def test_preflight_refuses_truncating_an_email(tmp_path: Path) -> None:
    """Truncating an e-mail field is a problem: a cut address is a wrong address."""
    [problem] = preflight(tmp_path, BASE + "  Email: {from: email, truncate: true}\n")
    assert problem.location.line == 6


# --- loader errors ----------------------------------------------------------------------------


def test_unknown_transform_lists_the_valid_ones(tmp_path: Path) -> None:
    """An unknown transform name is reported at its line with the valid names."""
    [problem] = problems_of(
        tmp_path, BASE + "  Title: {from: jobtitle, transforms: [trim, strip]}\n"
    )
    assert str(problem).startswith(f"{tmp_path / 'fields.yaml'}:6:")
    assert problem.message == 'field "Title": unknown transform "strip"'
    assert problem.hint is not None
    assert "valid transforms: boolean, collapse_whitespace" in problem.hint


def test_truncate_in_transforms_points_to_the_option(tmp_path: Path) -> None:
    """Listing truncate as a transform hints at the truncate: true option."""
    [problem] = problems_of(tmp_path, BASE + "  Title: {from: jobtitle, transforms: [truncate]}\n")
    assert problem.hint == 'truncation is a field option: write "truncate: true" instead'


def test_text_transform_after_a_number_is_refused(tmp_path: Path) -> None:
    """A chain that feeds a number into a text transform is refused at load."""
    fields = BASE + "  Budget__c:\n    from: budget\n    transforms:\n      - money\n      - trim\n"
    [problem] = problems_of(tmp_path, fields)
    assert problem.location.line == 10
    assert problem.message == (
        'field "Budget__c": "trim" works on text, but the transform before it gives number'
    )


def test_from_and_value_together_are_refused(tmp_path: Path) -> None:
    """A field with both from and value is refused at its line."""
    [problem] = problems_of(tmp_path, BASE + "  Rating: {from: x, value: Hot}\n")
    assert problem.location.line == 6
    assert problem.hint


def test_unknown_field_option_suggests_the_close_one(tmp_path: Path) -> None:
    """A misspelt option is reported at its line with a did-you-mean hint."""
    [problem] = problems_of(tmp_path, BASE + "  Title:\n    from: jobtitle\n    truncat: true\n")
    assert problem.location.line == 8
    assert problem.hint is not None
    assert problem.hint.startswith('did you mean "truncate"?')


def test_bad_unmapped_choice_lists_the_valid_ones(tmp_path: Path) -> None:
    """An invalid unmapped policy is reported with the valid choices."""
    fields = BASE + "  Industry: {from: industry, value_map: {A: B}, unmapped: skip}\n"
    [problem] = problems_of(tmp_path, fields)
    assert problem.message == 'field "Industry": "unmapped" cannot be "skip"'
    assert problem.hint == "valid values: keep, drop, reject, default"


def test_unmapped_default_needs_a_default(tmp_path: Path) -> None:
    """unmapped: default without default: is refused."""
    fields = BASE + "  Industry: {from: industry, value_map: {A: B}, unmapped: default}\n"
    [problem] = problems_of(tmp_path, fields)
    assert problem.message == 'field "Industry": "unmapped: default" needs a "default"'


def test_external_id_cannot_be_mapped(tmp_path: Path) -> None:
    """Mapping the external id field is refused: crmbridge always sets it."""
    [problem] = problems_of(tmp_path, BASE + "  HubSpot_Contact_Id__c: {from: hs_object_id}\n")
    assert problem.location.line == 6


def test_property_label_instead_of_name_is_refused(tmp_path: Path) -> None:
    """A HubSpot label (with spaces) instead of the internal name is refused with a hint."""
    [problem] = problems_of(tmp_path, BASE + "  Title: {from: Job Title}\n")
    assert problem.message == '"Job Title" is not a HubSpot property name'
    assert problem.hint is not None
    assert "internal name" in problem.hint


def test_missing_fields_file_is_a_config_error(tmp_path: Path) -> None:
    """A directory without fields.yaml gives a ConfigError naming the file."""
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path)
    assert caught.value.problems[0].location.path == str(tmp_path / "fields.yaml")


def test_problems_of_both_files_are_listed_together(tmp_path: Path) -> None:
    """Problems in fields.yaml and stages.yaml are reported in one ConfigError."""
    fields = BASE + "  Title: {from: jobtitle, transforms: [nope]}\n"
    stages = "stages:\n  - name: SQL\n    when: {}\n    status: Working - Contacted\n"
    problems = problems_of(tmp_path, fields, stages)
    assert [(Path(p.location.path).name, p.location.line) for p in problems] == [
        ("fields.yaml", 6),
        ("stages.yaml", 3),
    ]


def test_yaml_syntax_error_in_fields_is_located(tmp_path: Path) -> None:
    """A syntax error in fields.yaml is a ConfigError with its line, never a traceback."""
    [problem] = problems_of(tmp_path, BASE + "  Title: {from: jobtitle\n")
    assert problem.location.path == str(tmp_path / "fields.yaml")
    assert problem.location.line is not None
    assert problem.hint


def test_field_set_by_both_files_is_refused(tmp_path: Path) -> None:
    """A field that stages.yaml sets cannot also be mapped in fields.yaml."""
    stages = "target: Status\nstages: []\ndefault: Open - Not Contacted\n"
    [problem] = problems_of(tmp_path, BASE + "  Status: {value: Open - Not Contacted}\n", stages)
    assert problem.location.line == 6
