"""Contract tests: the Salesforce simulator driven through the real simple-salesforce 1.12.10.

Every test points the library at the simulator exactly as crmbridge does
(docs/settings.md#salesforce-wiring): ``instance_url`` + ``session_id`` + a ``requests.Session``
that trusts the throwaway
CA with ``trust_env = False``.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
import simple_salesforce
from cryptography import x509
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmbridge.sandbox.salesforce import (
    DEFAULT_OWNER_ID,
    LEAD_QUEUE_ID,
    SalesforceLimits,
    SalesforceOrg,
    SalesforceSimulator,
)
from crmbridge.sandbox.tls import make_local_ca

EXT = "HubSpot_Contact_Id__c"
UPSERT_PATH = f"composite/sobjects/Lead/{EXT}"
NO_ASSIGN = {"Sforce-Auto-Assign": "FALSE"}
ENV_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


# --- fixtures and helpers ----------------------------------------------------------------


@contextlib.contextmanager
def trusted_session(sim: SalesforceSimulator) -> Iterator[requests.Session]:
    """A session wired as crmbridge wires it: the simulator's CA, environment ignored."""
    with requests.Session() as session:
        session.verify = sim.ca_path
        session.trust_env = False
        yield session


def connect(
    sim: SalesforceSimulator,
    session: requests.Session,
    *,
    version: str = "59.0",
    token: str | None = None,
) -> simple_salesforce.Salesforce:
    return simple_salesforce.Salesforce(
        instance_url=sim.url,
        session_id=token or sim.access_token,
        version=version,
        session=session,
    )


@pytest.fixture(scope="module")
def running_sim() -> Iterator[SalesforceSimulator]:
    """One server for the module: stopping a server costs a poll interval, resetting is free."""
    with SalesforceSimulator() as simulator:
        yield simulator


@pytest.fixture
def org() -> SalesforceOrg:
    return SalesforceOrg()


@pytest.fixture
def sim(running_sim: SalesforceSimulator, org: SalesforceOrg) -> SalesforceSimulator:
    running_sim.reset(org)
    return running_sim


@pytest.fixture
def session(sim: SalesforceSimulator) -> Iterator[requests.Session]:
    with trusted_session(sim) as trusted:
        yield trusted


@pytest.fixture
def sf(sim: SalesforceSimulator, session: requests.Session) -> simple_salesforce.Salesforce:
    return connect(sim, session)


def lead(ext_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Lead"},
        EXT: ext_id,
        "LastName": "Ng",
        "Company": "Acme",
        **fields,
    }


def upsert(
    sf: simple_salesforce.Salesforce,
    records: list[dict[str, Any]],
    *,
    all_or_none: bool = False,
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    result = sf.restful(
        UPSERT_PATH,
        method="PATCH",
        json={"allOrNone": all_or_none, "records": records},
        headers=NO_ASSIGN if headers is None else headers,
    )
    return [dict(r) for r in result]


def row_codes(result: dict[str, Any]) -> list[str]:
    return [e["statusCode"] for e in result["errors"]]


def field_named(describe: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in describe["fields"] if f["name"] == name)


# --- TLS ---------------------------------------------------------------------------------


def test_tls_trusts_local_ca_with_env_bundles_set(
    sim: SalesforceSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trust_env off, the simulator's CA is used even when env CA bundles are set."""
    for name in ENV_BUNDLES:
        monkeypatch.setenv(name, certifi.where())
    with trusted_session(sim) as session:
        assert connect(sim, session).Lead.describe()["name"] == "Lead"


def test_tls_trusts_local_ca_with_env_bundles_unset(
    sim: SalesforceSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same wiring works when no env CA bundle is set."""
    for name in ENV_BUNDLES:
        monkeypatch.delenv(name, raising=False)
    with trusted_session(sim) as session:
        assert connect(sim, session).Lead.describe()["name"] == "Lead"


def test_tls_fails_verification_without_local_ca(sim: SalesforceSimulator) -> None:
    """A client that trusts only the public CAs refuses the simulator's certificate."""
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            connect(sim, session).Lead.describe()


def test_env_bundle_overrides_session_verify_when_trust_env_is_on(
    sim: SalesforceSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trap the wiring avoids: with trust_env on, REQUESTS_CA_BUNDLE beats Session.verify."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with requests.Session() as session:
        session.verify = sim.ca_path
        with pytest.raises(requests.exceptions.SSLError):
            connect(sim, session).Lead.describe()


def test_certificate_is_valid_for_localhost(sim: SalesforceSimulator) -> None:
    """The certificate also verifies when the instance URL names localhost."""
    port = sim.url.rsplit(":", 1)[1]
    with trusted_session(sim) as session:
        client = simple_salesforce.Salesforce(
            instance_url=f"https://localhost:{port}",
            session_id=sim.access_token,
            session=session,
        )
        assert client.Lead.describe()["name"] == "Lead"


def test_certificate_names_loopback_ip_and_localhost(tmp_path: Path) -> None:
    """The server certificate's SAN lists 127.0.0.1 and localhost."""
    ca = make_local_ca(tmp_path)
    cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)


def test_make_local_ca_reuses_files_per_directory(tmp_path: Path) -> None:
    """A second call for the same directory returns the same files without regenerating them."""
    first = make_local_ca(tmp_path)
    pem = first.ca_path.read_bytes()
    second = make_local_ca(tmp_path)
    assert second == first
    assert second.ca_path.read_bytes() == pem


# --- versions, auth, limits, faults ------------------------------------------------------


def test_version_list_is_served_and_uncounted(
    sim: SalesforceSimulator, session: requests.Session
) -> None:
    """GET /services/data/ lists versions and sends no Sforce-Limit-Info."""
    response = session.get(f"{sim.url}/services/data/", timeout=5)
    versions = [v["version"] for v in response.json()]
    assert response.status_code == 200
    assert "59.0" in versions
    assert "Sforce-Limit-Info" not in response.headers
    assert sim.api_usage[0] == 0


def test_retired_version_answers_410(sim: SalesforceSimulator, session: requests.Session) -> None:
    """Versions up to 30.0 are retired: 410."""
    with pytest.raises(SalesforceGeneralError) as raised:
        connect(sim, session, version="30.0").Lead.describe()
    assert raised.value.status == 410


def test_collections_upsert_needs_version_46(
    sim: SalesforceSimulator, session: requests.Session
) -> None:
    """Collections upsert below v46 is not found."""
    with pytest.raises(SalesforceResourceNotFound):
        upsert(connect(sim, session, version="45.0"), [lead("101")])


def test_bad_token_answers_401(sim: SalesforceSimulator, session: requests.Session) -> None:
    """An unknown token raises SalesforceExpiredSession with INVALID_SESSION_ID."""
    with pytest.raises(SalesforceExpiredSession) as raised:
        connect(sim, session, token="not-a-token").Lead.describe()
    assert raised.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_expired_session_answers_401(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """After expire_session the token in use gets 401 Session expired or invalid."""
    sf.Lead.describe()
    sim.expire_session()
    with pytest.raises(SalesforceExpiredSession) as raised:
        sf.query("SELECT Id FROM Lead")
    assert raised.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_issued_token_works_after_expiry(
    sim: SalesforceSimulator, session: requests.Session
) -> None:
    """A freshly issued token is accepted after the old session expired."""
    sim.expire_session()
    token = sim.issue_token()
    assert connect(sim, session, token=token).query("SELECT Id FROM Lead")["totalSize"] == 0


def test_limit_info_reaches_api_usage_after_restful(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """Sforce-Limit-Info on a restful call lands in sf.api_usage."""
    upsert(sf, [lead("101")])
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == sim.api_usage == (1, 100_000)


def test_collections_call_counts_as_one_request(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """A 200-record Collections upsert costs one API request."""
    upsert(sf, [lead(str(i)) for i in range(200)])
    assert sim.api_usage[0] == 1
    assert sim.calls.count("PATCH /composite/sobjects/Lead/{extField}") == 1


def test_spent_budget_answers_403_request_limit_exceeded(
    org: SalesforceOrg, sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """Once the daily budget is spent, requests are refused with REQUEST_LIMIT_EXCEEDED."""
    sim.reset(org, limits=SalesforceLimits(daily_api_requests=2))
    upsert(sf, [lead("101")])
    upsert(sf, [lead("102")])
    with pytest.raises(SalesforceRefusedRequest) as raised:
        upsert(sf, [lead("103")])
    assert raised.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert org.get_by_external_id("103") is None


def test_limits_resource_reports_remaining(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """GET /limits reports Max and Remaining daily API requests, counting itself."""
    sim.set_api_usage(10_017)
    limits = sf.restful("limits")
    assert limits["DailyApiRequests"] == {"Max": 100_000, "Remaining": 100_000 - 10_018}
    assert "DailyBulkApiBatches" in limits


def test_injected_503_raises_general_error(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """An injected 503 surfaces as SalesforceGeneralError with SERVER_UNAVAILABLE."""
    sim.inject_status(503, path_pattern="composite")
    with pytest.raises(SalesforceGeneralError) as raised:
        upsert(sf, [lead("101")])
    assert raised.value.status == 503
    assert raised.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_injected_html_503_body_is_text(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """An HTML 503 reaches the client as text, not JSON."""
    sim.inject_status(503, html=True)
    with pytest.raises(SalesforceGeneralError) as raised:
        sf.Lead.describe()
    assert isinstance(raised.value.content, str)
    assert "<html>" in raised.value.content


def test_injected_fault_is_used_up(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """An injected fault answers only its number of times, then the API behaves again."""
    sim.inject_status(500, times=1)
    with pytest.raises(SalesforceGeneralError):
        sf.Lead.describe()
    assert sf.Lead.describe()["name"] == "Lead"


def test_injected_concurrency_limit_is_refused_request(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """The concurrent-request variant of REQUEST_LIMIT_EXCEEDED carries its own message."""
    sim.inject_status(403, message="ConcurrentPerOrgLongTxn Limit exceeded.")
    with pytest.raises(SalesforceRefusedRequest) as raised:
        upsert(sf, [lead("101")])
    assert raised.value.content[0] == {
        "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }


def test_injected_request_level_lock_error_is_400(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """A request-level UNABLE_TO_LOCK_ROW arrives as a 400 with that errorCode."""
    sim.inject_status(400, error_code="UNABLE_TO_LOCK_ROW", method="PATCH")
    with pytest.raises(SalesforceMalformedRequest) as raised:
        upsert(sf, [lead("101")])
    assert raised.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


# --- describe ----------------------------------------------------------------------------


def test_describe_marks_the_upsert_key_external_and_unique(
    sf: simple_salesforce.Salesforce,
) -> None:
    """HubSpot_Contact_Id__c is Text(64), External ID, unique."""
    spec = field_named(sf.Lead.describe(), EXT)
    assert (spec["type"], spec["length"], spec["externalId"], spec["unique"]) == (
        "string",
        64,
        True,
        True,
    )


def test_describe_gives_custom_number_precision(sf: simple_salesforce.Salesforce) -> None:
    """Budget__c is Currency(16,2) and Timeline_Days__c Number(18,0)."""
    describe = sf.Lead.describe()
    budget, timeline = field_named(describe, "Budget__c"), field_named(describe, "Timeline_Days__c")
    assert (budget["type"], budget["precision"], budget["scale"]) == ("currency", 16, 2)
    assert (timeline["type"], timeline["precision"], timeline["scale"]) == ("double", 18, 0)


def test_describe_status_is_restricted_with_a_default(sf: simple_salesforce.Salesforce) -> None:
    """Status is a restricted, defaulted picklist whose default is Open - Not Contacted."""
    status = field_named(sf.Lead.describe(), "Status")
    defaults = [p["value"] for p in status["picklistValues"] if p["defaultValue"]]
    assert status["restrictedPicklist"] is True
    assert status["defaultedOnCreate"] is True
    assert defaults == ["Open - Not Contacted"]


def test_describe_industry_is_unrestricted_with_32_values(
    sf: simple_salesforce.Salesforce,
) -> None:
    """Industry offers the 32 standard values and is not restricted."""
    industry = field_named(sf.Lead.describe(), "Industry")
    values = [p["value"] for p in industry["picklistValues"]]
    assert len(values) == 32
    assert {"Agriculture", "Machinery", "Manufacturing", "Utilities"} <= set(values)
    assert industry["restrictedPicklist"] is False


def test_describe_required_fields_are_last_name_and_company(
    sf: simple_salesforce.Salesforce,
) -> None:
    """Only LastName and Company are createable, non-nillable and not defaulted."""
    required = [
        f["name"]
        for f in sf.Lead.describe()["fields"]
        if f["createable"]
        and not f["nillable"]
        and not f["defaultedOnCreate"]
        and f["type"] != "boolean"
    ]
    assert required == ["LastName", "Company"]


# --- Collections upsert ------------------------------------------------------------------


def test_upsert_creates_then_updates_the_same_lead(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """A second upsert with the same key updates the lead instead of creating another."""
    first = upsert(sf, [lead("101", Title="CTO")])[0]
    second = upsert(sf, [lead("101", Title="CEO")])[0]
    assert first["created"] is True
    assert second == {"id": first["id"], "success": True, "errors": [], "created": False}
    assert [(r["Id"], r["Title"]) for r in org.leads] == [(first["id"], "CEO")]


def test_new_lead_ids_have_the_lead_prefix(sf: simple_salesforce.Salesforce) -> None:
    """Created leads get 18-character ids starting with 00Q."""
    new_id = upsert(sf, [lead("101")])[0]["id"]
    assert new_id.startswith("00Q")
    assert len(new_id) == 18


def test_row_errors_come_inside_http_200_with_status_code(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """A bad row fails alone, reported with statusCode in an HTTP 200, in request order."""
    results = upsert(sf, [lead("101"), lead("102", Email="bad@")])
    assert results[0]["success"] is True
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_EMAIL_ADDRESS",
                "message": "Email: invalid email address: bad@",
                "fields": ["Email"],
            }
        ],
    }
    assert org.get_by_external_id("101") is not None


def test_duplicate_key_in_one_request_fails_every_copy(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """The same external id twice in one request fails both copies with DUPLICATE_VALUE."""
    results = upsert(sf, [lead("102"), lead("101"), lead("102", Title="newer")])
    assert [r["success"] for r in results] == [False, True, False]
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert results[2]["errors"][0]["message"] == "Duplicate external id specified: 102"
    assert org.get_by_external_id("102") is None


def test_all_or_none_rolls_back_every_row(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """With allOrNone one failure rolls back the rest, which report the rollback code."""
    results = upsert(sf, [lead("101"), lead("102", Company=None)], all_or_none=True)
    assert row_codes(results[0]) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert row_codes(results[1]) == ["REQUIRED_FIELD_MISSING"]
    assert org.leads == []


def test_restricted_status_rejects_unknown_value(sf: simple_salesforce.Salesforce) -> None:
    """A Status outside the restricted picklist fails the row."""
    result = upsert(sf, [lead("101", Status="Qualified")])[0]
    assert result["errors"] == [
        {
            "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "message": "Status: bad value for restricted picklist field: Qualified",
            "fields": ["Status"],
        }
    ]


def test_extra_lead_status_is_accepted(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """An org-specific Status value configured on the org is accepted."""
    sim.reset(SalesforceOrg(extra_lead_statuses=("Qualified",)))
    result = upsert(sf, [lead("101", Status="Qualified")])[0]
    assert result["success"] is True


def test_unrestricted_industry_stores_any_value(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """An unrestricted picklist stores a value outside its list."""
    upsert(sf, [lead("101", Industry="LOGISTICS_AND_SUPPLY_CHAIN")])
    stored = org.get_by_external_id("101")
    assert stored is not None
    assert stored["Industry"] == "LOGISTICS_AND_SUPPLY_CHAIN"


def test_company_longer_than_255_is_string_too_long(sf: simple_salesforce.Salesforce) -> None:
    """A 256-character Company fails the row with STRING_TOO_LONG."""
    company = "C" * 256
    error = upsert(sf, [lead("101", Company=company)])[0]["errors"][0]
    assert error == {
        "statusCode": "STRING_TOO_LONG",
        "message": f"Company: data value too large: {company} (max length=255)",
        "fields": ["Company"],
    }


def test_non_ascii_email_is_rejected_by_default(sf: simple_salesforce.Salesforce) -> None:
    """A non-ASCII local part is an invalid address unless the org enabled internationalization."""
    result = upsert(sf, [lead("101", Email="jürgen@example.de")])[0]
    assert row_codes(result) == ["INVALID_EMAIL_ADDRESS"]


def test_non_ascii_email_is_accepted_with_internationalization(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """With Email Address Internationalization on, a non-ASCII local part is accepted."""
    sim.reset(SalesforceOrg(email_internationalization=True))
    result = upsert(sf, [lead("101", Email="jürgen@example.de")])[0]
    assert result["success"] is True


def test_missing_required_fields_are_listed(sf: simple_salesforce.Salesforce) -> None:
    """A create without LastName and Company names both in one REQUIRED_FIELD_MISSING."""
    record = {"attributes": {"type": "Lead"}, EXT: "101", "Email": "a@example.com"}
    error = upsert(sf, [record])[0]["errors"][0]
    assert error == {
        "statusCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [LastName, Company]",
        "fields": ["LastName", "Company"],
    }


def test_update_does_not_require_untouched_fields(sf: simple_salesforce.Salesforce) -> None:
    """An update may omit LastName and Company that the lead already has."""
    upsert(sf, [lead("101")])
    result = upsert(sf, [{"attributes": {"type": "Lead"}, EXT: "101", "Title": "CEO"}])[0]
    assert result["success"] is True


def test_text_in_currency_field_fails_the_whole_request(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """ "50k" in Budget__c is a JSON_PARSER_ERROR that fails every row of the request."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        upsert(sf, [lead("101"), lead("102", Budget__c="50k")])
    assert raised.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert org.leads == []


def test_numeric_text_in_number_field_is_accepted(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """A number sent as numeric text is stored as a number."""
    upsert(sf, [lead("101", Budget__c="75000.50", NumberOfEmployees=120)])
    stored = org.get_by_external_id("101")
    assert stored is not None
    assert (stored["Budget__c"], stored["NumberOfEmployees"]) == (75000.5, 120)


def test_unknown_field_fails_the_whole_request(sf: simple_salesforce.Salesforce) -> None:
    """An unknown field is a request-level INVALID_FIELD."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        upsert(sf, [lead("101", Need__c="visibility")])
    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_more_than_200_records_exceed_the_id_limit(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """201 records in one Collections call are refused with EXCEEDED_ID_LIMIT."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        upsert(sf, [lead(str(i)) for i in range(201)])
    assert raised.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert org.leads == []


def test_key_field_that_is_not_an_external_id_is_not_found(
    sf: simple_salesforce.Salesforce,
) -> None:
    """Upserting keyed by a field without the External ID flag answers NOT_FOUND."""
    with pytest.raises(SalesforceResourceNotFound) as raised:
        sf.restful(
            "composite/sobjects/Lead/Pain_Point__c",
            method="PATCH",
            json={"allOrNone": False, "records": [lead("101")]},
        )
    assert raised.value.content[0]["errorCode"] == "NOT_FOUND"


def test_record_without_attributes_type_fails_its_row(sf: simple_salesforce.Salesforce) -> None:
    """A record lacking attributes.type fails with INVALID_TYPE while others go through."""
    untyped = {EXT: "102", "LastName": "Li", "Company": "Initech"}
    results = upsert(sf, [lead("101"), untyped])
    assert results[0]["success"] is True
    assert row_codes(results[1]) == ["INVALID_TYPE"]


def test_id_in_the_body_fails_the_row(sf: simple_salesforce.Salesforce) -> None:
    """Sending Id in an upsert body fails that row."""
    result = upsert(sf, [lead("101", Id="00Q000000000001AAA")])[0]
    assert row_codes(result) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]


def test_null_clears_a_field(org: SalesforceOrg, sf: simple_salesforce.Salesforce) -> None:
    """An explicit null on update clears the stored value."""
    upsert(sf, [lead("101", Title="CTO")])
    upsert(sf, [lead("101", Title=None)])
    stored = org.get_by_external_id("101")
    assert stored is not None
    assert stored["Title"] is None


def test_status_defaults_on_create(org: SalesforceOrg, sf: simple_salesforce.Salesforce) -> None:
    """A lead created without Status gets the picklist default."""
    upsert(sf, [lead("101")])
    stored = org.get_by_external_id("101")
    assert stored is not None
    assert stored["Status"] == "Open - Not Contacted"


def test_number_beyond_precision_is_out_of_range(sf: simple_salesforce.Salesforce) -> None:
    """A Budget__c with more than 14 integer digits fails NUMBER_OUTSIDE_VALID_RANGE."""
    result = upsert(sf, [lead("101", Budget__c=10**14)])[0]
    assert row_codes(result) == ["NUMBER_OUTSIDE_VALID_RANGE"]


def test_converted_lead_cannot_be_updated(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """Updating a converted lead fails with CANNOT_UPDATE_CONVERTED_LEAD."""
    lead_id = upsert(sf, [lead("101")])[0]["id"]
    org.convert(lead_id)
    result = upsert(sf, [lead("101", Title="CEO")])[0]
    assert row_codes(result) == ["CANNOT_UPDATE_CONVERTED_LEAD"]


def test_duplicate_rule_blocks_a_second_lead_with_the_same_email(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """With a duplicate rule on Email, a new lead reusing an address fails DUPLICATES_DETECTED."""
    org.add_duplicate_rule("Email")
    upsert(sf, [lead("101", Email="ada@example.com")])
    result = upsert(sf, [lead("102", Email="ADA@example.com")])[0]
    assert row_codes(result) == ["DUPLICATES_DETECTED"]


def test_injected_row_error_appears_once_inside_http_200(
    sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """An injected UNABLE_TO_LOCK_ROW fails that row in a 200 once, then the retry succeeds."""
    sim.inject_row_error("102")
    first = upsert(sf, [lead("101"), lead("102")])
    retry = upsert(sf, [lead("102")])
    assert [r["success"] for r in first] == [True, False]
    assert row_codes(first[1]) == ["UNABLE_TO_LOCK_ROW"]
    assert retry[0]["success"] is True


def test_auto_assign_false_keeps_the_default_owner(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """With Sforce-Auto-Assign: FALSE no assignment rule runs."""
    upsert(sf, [lead("101")], headers=NO_ASSIGN)
    stored = org.get_by_external_id("101")
    assert stored is not None
    assert stored["OwnerId"] == DEFAULT_OWNER_ID
    assert org.auto_assigned == []


def test_auto_assign_runs_when_the_header_is_absent(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """Without the header the assignment rule moves the lead to the queue."""
    lead_id = upsert(sf, [lead("101")], headers={})[0]["id"]
    stored = org.get_by_external_id("101")
    assert stored is not None
    assert stored["OwnerId"] == LEAD_QUEUE_ID
    assert org.auto_assigned == [lead_id]


# --- single-record upsert ----------------------------------------------------------------


def test_single_upsert_answers_201_then_200(sf: simple_salesforce.Salesforce) -> None:
    """Single upsert returns 201 on create and 200 on update from v46."""
    data = {"LastName": "Ng", "Company": "Acme"}
    assert sf.Lead.upsert(f"{EXT}/101", data, headers=NO_ASSIGN) == 201
    assert sf.Lead.upsert(f"{EXT}/101", data, headers=NO_ASSIGN) == 200


def test_single_upsert_update_answers_204_before_v46(
    sim: SalesforceSimulator, session: requests.Session
) -> None:
    """Up to v45 a single-record update answers 204 No Content."""
    old = connect(sim, session, version="45.0")
    data = {"LastName": "Ng", "Company": "Acme"}
    assert old.Lead.upsert(f"{EXT}/101", data) == 201
    assert old.Lead.upsert(f"{EXT}/101", data) == 204


def test_single_upsert_invalid_data_is_400_with_error_code(
    sf: simple_salesforce.Salesforce,
) -> None:
    """Invalid data in a single upsert is a 400 listing errorCode and fields."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.Lead.upsert(f"{EXT}/101", {"LastName": "Ng", "Company": "Acme", "Email": "bad@"})
    assert raised.value.content == [
        {
            "message": "Email: invalid email address: bad@",
            "errorCode": "INVALID_EMAIL_ADDRESS",
            "fields": ["Email"],
        }
    ]


def test_single_upsert_on_email_matching_two_leads_answers_300(
    sf: simple_salesforce.Salesforce,
) -> None:
    """Keyed by a non-unique idLookup field that matches two leads, single upsert answers 300."""
    upsert(sf, [lead("101", Email="a@example.com"), lead("102", Email="a@example.com")])
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Lead.upsert("Email/a@example.com", {"Title": "CEO"})


def test_sobject_upsert_leaves_sf_api_usage_stale(sf: simple_salesforce.Salesforce) -> None:
    """Calls through sf.Lead update only that SFType's api_usage, not sf.api_usage (4.1)."""
    sf.Lead.upsert(f"{EXT}/101", {"LastName": "Ng", "Company": "Acme"})
    assert sf.api_usage == {}


# --- composite create and retrieve -------------------------------------------------------


def test_composite_create_returns_ids_without_created(
    sf: simple_salesforce.Salesforce,
) -> None:
    """POST /composite/sobjects creates leads and reports id, success and errors only."""
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": [lead("101")]},
        headers=NO_ASSIGN,
    )
    assert set(results[0]) == {"id", "success", "errors"}
    assert results[0]["success"] is True


def test_composite_retrieve_returns_null_for_unknown_ids(
    sf: simple_salesforce.Salesforce,
) -> None:
    """GET /composite/sobjects/Lead answers null in place of ids it does not know."""
    lead_id = upsert(sf, [lead("101", Title="CTO")])[0]["id"]
    found = sf.restful(
        "composite/sobjects/Lead",
        params={"ids": f"{lead_id},00QDn000000ZZZZAAA", "fields": "Id,Title"},
    )
    assert found[0]["Title"] == "CTO"
    assert found[1] is None


# --- SOQL --------------------------------------------------------------------------------


def test_query_all_follows_next_records_url_past_2000_rows(
    org: SalesforceOrg, sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """query_all pages through 2,100 rows in two calls, 2,000 rows a page."""
    org.seed({EXT: str(i), "LastName": f"L{i}", "Company": "Acme"} for i in range(2_100))
    first = sf.query("SELECT Id FROM Lead")
    everything = sf.query_all("SELECT Id, LastName FROM Lead")
    assert (len(first["records"]), first["done"], first["totalSize"]) == (2_000, False, 2_100)
    assert "/query/" in first["nextRecordsUrl"]
    assert everything["totalSize"] == 2_100
    assert sim.calls.count("GET /query/{locator}") == 1


def test_soql_escaped_quote_matches_the_value(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """A quote escaped as \\' inside a SOQL literal matches the stored value."""
    org.seed([{EXT: "o'brien", "LastName": "O'Brien", "Company": "Acme"}])
    result = sf.query_all(f"SELECT Id, LastName FROM Lead WHERE {EXT} = 'o\\'brien'")
    assert [r["LastName"] for r in result["records"]] == ["O'Brien"]


def test_soql_escaped_backslash_matches_the_value(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """A backslash escaped as \\\\ inside a SOQL literal matches one stored backslash."""
    org.seed([{EXT: "a\\b", "LastName": "Slash", "Company": "Acme"}])
    result = sf.query_all(f"SELECT LastName FROM Lead WHERE {EXT} = 'a\\\\b'")
    assert [r["LastName"] for r in result["records"]] == ["Slash"]


def test_soql_unescaped_quote_is_malformed(sf: simple_salesforce.Salesforce) -> None:
    """An unescaped quote in a literal breaks the query: MALFORMED_QUERY."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_all(f"SELECT Id FROM Lead WHERE {EXT} = 'o'brien'")
    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_soql_stray_backslash_is_malformed(sf: simple_salesforce.Salesforce) -> None:
    """A backslash that starts no valid escape sequence is refused."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_all(f"SELECT Id FROM Lead WHERE {EXT} = 'a\\qb'")
    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_soql_in_and_and_filter_records(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """IN lists combined with AND select exactly the matching leads, ignoring text case."""
    org.seed(
        [
            {EXT: "1", "LastName": "A", "Company": "Acme", "Email": "a@x.com"},
            {EXT: "2", "LastName": "B", "Company": "Acme", "Email": "b@x.com"},
            {EXT: "3", "LastName": "C", "Company": "Initech", "Email": "c@x.com"},
        ]
    )
    soql = f"SELECT {EXT} FROM Lead WHERE {EXT} IN ('1', '3') AND Company = 'ACME'"
    assert [r[EXT] for r in sf.query_all(soql)["records"]] == ["1"]


def test_soql_unknown_field_is_invalid_field(sf: simple_salesforce.Salesforce) -> None:
    """Selecting a field the org does not have is INVALID_FIELD."""
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Need__c FROM Lead")
    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_query_records_carry_type_and_url_attributes(
    org: SalesforceOrg, sf: simple_salesforce.Salesforce
) -> None:
    """Each query record has attributes with type Lead and its sObject URL."""
    (lead_id,) = org.seed([{EXT: "101", "LastName": "Ng", "Company": "Acme"}])
    record = sf.query("SELECT LastName FROM Lead")["records"][0]
    assert record["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v59.0/sobjects/Lead/{lead_id}",
    }


def test_expired_query_locator_answers_400(
    org: SalesforceOrg, sim: SalesforceSimulator, sf: simple_salesforce.Salesforce
) -> None:
    """Following a nextRecordsUrl after its cursor expired fails INVALID_QUERY_LOCATOR."""
    org.seed({EXT: str(i), "LastName": "L", "Company": "Acme"} for i in range(2_001))
    first = sf.query("SELECT Id FROM Lead")
    sim.expire_query_locators()
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert raised.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
