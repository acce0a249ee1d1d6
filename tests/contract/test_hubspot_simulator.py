"""Contract tests: the real hubspot-api-client 12.0.0 against the bundled HubSpot simulator.

Each test pins one behaviour from docs/hubspot-api.md (and the traps of docs/traps.md) that
crmbridge's HubSpot adapter relies on, so a change to the simulator that would let a naive
connector pass shows up here first.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
)
from hubspot.crm.contacts.exceptions import NotFoundException, UnauthorizedException

from crmbridge.sandbox._server import Fault, Response
from crmbridge.sandbox.hubspot import HubSpotLimits, HubSpotPortal, HubSpotSimulator
from crmbridge.sandbox.seed import seed_portal

TOKEN = "sandbox-hubspot-token"
NOW_MS = 1_760_000_000_000
MINUTE_MS = 60_000
BIG_PORTAL_SIZE = 10_200
SEARCH = "POST /crm/v3/objects/contacts/search"


class FakeClock:
    """A settable epoch-ms clock shared by a portal and its simulator."""

    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@dataclass
class Apis:
    """The client's API objects, built once (each attribute access builds a new pool)."""

    basic: Any
    search: Any
    batch: Any
    properties: Any

    @classmethod
    def connect(cls, base_url: str, token: str = TOKEN) -> Apis:
        client = HubSpot(access_token=token, host=base_url)
        return cls(
            client.crm.contacts.basic_api,
            client.crm.contacts.search_api,
            client.crm.contacts.batch_api,
            client.crm.properties.core_api,
        )

    def close(self) -> None:
        for api in (self.basic, self.search, self.batch, self.properties):
            api.api_client.rest_client.pool_manager.clear()


def search_request(
    filters: list[dict[str, Any]] | None = None,
    *,
    sort: Any = None,
    limit: int = 10,
    after: str | None = None,
    properties: list[str] | None = None,
) -> PublicObjectSearchRequest:
    return PublicObjectSearchRequest(
        filter_groups=[{"filters": filters}] if filters else None,
        sorts=[sort] if sort is not None else None,
        limit=limit,
        after=after,
        properties=properties,
    )


def error_json(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# --- fixtures -------------------------------------------------------------------------------


# Servers are module-scoped (stopping one takes the serve loop's poll interval); each test gets a
# fresh portal swapped in and the simulator's faults, call counts and rate budgets reset.


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def portal(clock: FakeClock) -> HubSpotPortal:
    """25 hand-made contacts modified one minute apart, ids 1001-1025, plus one archived."""
    clock.now_ms = NOW_MS
    portal = HubSpotPortal(clock_ms=clock)
    for index in range(25):
        portal.add_contact(
            {
                "email": f"contact{index}@example.com",
                "firstname": ("Ana", "Ben", "Carla")[index % 3],
                "lastname": "Lima",
                "industry": "MACHINERY" if index % 2 else "RETAIL",
                "lifecyclestage": "lead",
                "budget": "75000" if index % 5 else None,
            },
            modified_at_ms=NOW_MS - (30 - index) * MINUTE_MS,
        )
    portal.add_contact(
        {"email": "gone@example.com"}, modified_at_ms=NOW_MS - MINUTE_MS, archived=True
    )
    return portal


@pytest.fixture(scope="module")
def server(clock: FakeClock) -> Iterator[tuple[HubSpotSimulator, Apis]]:
    with HubSpotSimulator(HubSpotPortal(clock_ms=clock)) as simulator:
        apis = Apis.connect(simulator.base_url)
        yield simulator, apis
        apis.close()


@pytest.fixture
def sim(server: tuple[HubSpotSimulator, Apis], portal: HubSpotPortal) -> HubSpotSimulator:
    simulator, _ = server
    simulator.portal = portal
    simulator.search_index_lag_ms = 0
    simulator.reset()
    return simulator


@pytest.fixture
def apis(server: tuple[HubSpotSimulator, Apis], sim: HubSpotSimulator) -> Apis:
    return server[1]


@pytest.fixture(scope="module")
def limited_server(clock: FakeClock) -> Iterator[tuple[HubSpotSimulator, Apis]]:
    limits = HubSpotLimits(burst_per_10s=3, search_per_s=2, daily=1000)
    with HubSpotSimulator(HubSpotPortal(clock_ms=clock), limits=limits) as simulator:
        apis = Apis.connect(simulator.base_url)
        yield simulator, apis
        apis.close()


@pytest.fixture
def limited(
    limited_server: tuple[HubSpotSimulator, Apis], portal: HubSpotPortal
) -> tuple[HubSpotSimulator, Apis]:
    """A simulator with a burst budget of 3 per 10 s, 2 searches per second and 1,000 a day."""
    limited_server[0].portal = portal
    limited_server[0].reset()
    return limited_server


@pytest.fixture(scope="module")
def big_portal() -> HubSpotPortal:
    """A seeded portal past the 10,000-result cap, with a 250-contact and a 40-contact tie."""
    portal = HubSpotPortal(clock_ms=FakeClock())
    seed_portal(portal, count=BIG_PORTAL_SIZE, tie_groups=[250, 40])
    return portal


@pytest.fixture(scope="module")
def big_apis(big_portal: HubSpotPortal) -> Iterator[Apis]:
    with HubSpotSimulator(big_portal, random_seed=3) as simulator:
        apis = Apis.connect(simulator.base_url)
        yield apis
        apis.close()


@pytest.fixture(scope="module")
def big_tie_ms(big_portal: HubSpotPortal) -> int:
    stamp, size = Counter(row.modified_ms for row in big_portal.search_rows()).most_common(1)[0]
    assert size == 250
    return stamp


# --- list -----------------------------------------------------------------------------------


def test_list_pages_by_next_id_and_last_page_has_no_paging(apis: Apis) -> None:
    """``paging.next.after`` is the next record id, and the last page carries no paging."""
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = apis.basic.get_page(limit=10, after=after)
        seen += [contact.id for contact in page.results]
        pages += 1
        if page.paging is None:
            break
        after = page.paging.next.after
        assert after == str(int(seen[-1]) + 1)
    assert pages == 3
    assert seen == [str(number) for number in range(1001, 1026)]


def test_list_limit_above_100_is_a_400(apis: Apis) -> None:
    """A list ``limit`` above 100 is refused with a 400 ``VALIDATION_ERROR``."""
    with pytest.raises(ApiException) as caught:
        apis.basic.get_page(limit=101)
    assert caught.value.status == 400
    assert error_json(caught.value)["category"] == "VALIDATION_ERROR"


def test_list_default_properties_when_none_requested(apis: Apis) -> None:
    """Without ``properties`` the list returns HubSpot's six default properties."""
    contact = apis.basic.get_page(limit=1).results[0]
    assert set(contact.properties) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
    }  # fmt: skip


def test_list_returns_null_for_empty_and_drops_unknown_properties(apis: Apis) -> None:
    """A requested property without a value is ``None``; an unknown name is left out."""
    contact = apis.basic.get_page(limit=1, properties=["budget", "no_such_property"]).results[0]
    assert contact.properties["budget"] is None
    assert "no_such_property" not in contact.properties


def test_list_accepts_repeated_properties(apis: Apis) -> None:
    """The client sends list parameters repeated (``?properties=a&properties=b``): both count."""
    contact = apis.basic.get_page(limit=1, properties=["email", "industry"]).results[0]
    assert contact.properties["email"] == "contact0@example.com"
    assert contact.properties["industry"] == "RETAIL"


def test_list_accepts_comma_separated_properties(sim: HubSpotSimulator) -> None:
    """The documented comma form (``?properties=a,b``) works as well as the repeated one."""
    request = urllib.request.Request(
        f"{sim.base_url}/crm/v3/objects/contacts?limit=1&properties=email,industry",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        assert response.headers["Content-Type"] == "application/json;charset=utf-8"
        body = json.load(response)
    assert body["results"][0]["properties"]["industry"] == "RETAIL"
    assert body["results"][0]["properties"]["email"] == "contact0@example.com"


def test_list_shows_archived_contacts_only_with_archived_true(apis: Apis) -> None:
    """``archived=true`` lists only archived contacts, and the default list hides them."""
    live = apis.basic.get_page(limit=100, properties=["email"]).results
    archived = apis.basic.get_page(limit=100, archived=True, properties=["email"]).results
    assert "gone@example.com" not in {contact.properties["email"] for contact in live}
    assert [contact.properties["email"] for contact in archived] == ["gone@example.com"]
    assert archived[0].archived is True


# --- search ---------------------------------------------------------------------------------


def test_search_pages_by_offset_and_reports_total(apis: Apis) -> None:
    """Search ``after`` is a stringified offset and ``total`` counts every match; no end paging."""
    first = apis.search.do_search(public_object_search_request=search_request(limit=20))
    assert first.total == 25
    assert first.paging.next.after == "20"
    last = apis.search.do_search(public_object_search_request=search_request(limit=20, after="20"))
    assert len(last.results) == 5
    assert last.paging is None


def test_search_filters_a_lastmodifieddate_window(apis: Apis) -> None:
    """``GT`` and ``LTE`` on ``lastmodifieddate`` take epoch-ms strings and bound the window."""
    low, high = NOW_MS - 20 * MINUTE_MS, NOW_MS - 10 * MINUTE_MS
    filters = [
        {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(low)},
        {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(high)},
    ]
    sort = {"propertyName": "lastmodifieddate", "direction": "ASCENDING"}
    found = apis.search.do_search(
        public_object_search_request=search_request(filters, sort=sort, limit=100)
    )
    assert [contact.id for contact in found.results] == [str(n) for n in range(1012, 1022)]


def test_search_accepts_iso_datetime_filter_values(apis: Apis) -> None:
    """An ISO-8601 filter value on a datetime property compares like its epoch-ms form."""
    filters = [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2025-10-09T08:33:20.000Z"}
    ]
    found = apis.search.do_search(public_object_search_request=search_request(filters))
    assert found.total == 15  # NOW_MS is 08:53:20Z; contacts sit 30, 29 … 6 minutes before it


def test_search_hs_lastmodifieddate_matches_nothing(apis: Apis) -> None:
    """A filter on ``hs_lastmodifieddate`` (not a contact property) silently finds nothing."""
    filters = [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "0"}]
    found = apis.search.do_search(public_object_search_request=search_request(filters))
    assert found.total == 0


def test_search_never_returns_archived_contacts(apis: Apis) -> None:
    """Archived contacts are absent from search even when a filter names them."""
    filters = [{"propertyName": "email", "operator": "EQ", "value": "gone@example.com"}]
    assert apis.search.do_search(public_object_search_request=search_request(filters)).total == 0


def test_search_string_eq_is_case_insensitive(apis: Apis) -> None:
    """String ``EQ`` ignores case."""
    filters = [{"propertyName": "email", "operator": "EQ", "value": "CONTACT3@EXAMPLE.COM"}]
    found = apis.search.do_search(public_object_search_request=search_request(filters))
    assert [contact.id for contact in found.results] == ["1004"]


def test_search_string_in_values_must_be_lowercase(apis: Apis) -> None:
    """String ``IN`` values only match when sent in lower case."""
    upper = [{"propertyName": "firstname", "operator": "IN", "values": ["ANA"]}]
    lower = [{"propertyName": "firstname", "operator": "IN", "values": ["ana"]}]
    assert apis.search.do_search(public_object_search_request=search_request(upper)).total == 0
    assert apis.search.do_search(public_object_search_request=search_request(lower)).total == 9


def test_search_enumeration_eq_is_case_sensitive(apis: Apis) -> None:
    """Enumeration values compare exactly: ``machinery`` is not ``MACHINERY``."""
    wrong = [{"propertyName": "industry", "operator": "EQ", "value": "machinery"}]
    right = [{"propertyName": "industry", "operator": "EQ", "value": "MACHINERY"}]
    assert apis.search.do_search(public_object_search_request=search_request(wrong)).total == 0
    assert apis.search.do_search(public_object_search_request=search_request(right)).total == 12


def test_search_more_than_six_filters_in_a_group_is_a_400(apis: Apis) -> None:
    """A filter group with seven filters breaks the 5/6/18 limits and is refused."""
    filters = [
        {"propertyName": "hs_object_id", "operator": "GT", "value": str(n)} for n in range(7)
    ]
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=search_request(filters))
    assert caught.value.status == 400


def test_search_two_sorts_is_a_400(apis: Apis) -> None:
    """Only one sort is allowed."""
    request = search_request()
    request.sorts = [
        {"propertyName": "createdate", "direction": "ASCENDING"},
        {"propertyName": "email", "direction": "ASCENDING"},
    ]
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=request)
    assert caught.value.status == 400


def test_search_string_sort_is_silently_ignored(apis: Apis) -> None:
    """A sort sent as a JSON string is ignored: results come oldest-created first."""
    sort = json.dumps({"propertyName": "lastmodifieddate", "direction": "DESCENDING"})
    found = apis.search.do_search(public_object_search_request=search_request(sort=sort, limit=3))
    assert [contact.id for contact in found.results] == ["1001", "1002", "1003"]


def test_search_limit_above_200_is_a_400(apis: Apis) -> None:
    """Search ``limit`` stops at 200."""
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=search_request(limit=201))
    assert caught.value.status == 400


def test_search_body_over_3000_characters_is_a_400(apis: Apis) -> None:
    """A long ``IN`` list pushes the body past 3,000 characters and is refused."""
    values = [f"someone{n}@example.com" for n in range(200)]
    filters = [{"propertyName": "email", "operator": "IN", "values": values}]
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=search_request(filters))
    assert caught.value.status == 400


def test_search_responses_carry_no_rate_limit_headers(
    limited: tuple[HubSpotSimulator, Apis],
) -> None:
    """Search answers never include ``X-HubSpot-RateLimit-*`` headers, even with limits set."""
    _, apis = limited
    _, status, headers = apis.search.do_search_with_http_info(
        public_object_search_request=search_request()
    )
    assert status == 200
    assert not [name for name in headers if name.lower().startswith("x-hubspot-ratelimit")]


def test_search_index_lag_hides_recent_writes_from_search_only(
    sim: HubSpotSimulator, apis: Apis, clock: FakeClock
) -> None:
    """A write shows in list at once but in search only once the index lag has passed."""
    sim.search_index_lag_ms = 5_000
    sim.portal.update_contact("1001", {"email": "renamed@example.com"})
    filters = [{"propertyName": "email", "operator": "EQ", "value": "renamed@example.com"}]
    request = search_request(filters)
    assert apis.search.do_search(public_object_search_request=request).total == 0
    listed = apis.basic.get_page(limit=1, properties=["email"]).results[0]
    assert listed.properties["email"] == "renamed@example.com"
    clock.advance(5_000)
    assert apis.search.do_search(public_object_search_request=request).total == 1


# --- search on a big portal: ties and the 10,000 cap ----------------------------------------


def test_search_keyset_query_drains_a_tie_larger_than_a_page(
    big_apis: Apis, big_tie_ms: int
) -> None:
    """``lastmodifieddate EQ t`` + ``hs_object_id GT last``, sorted by id, reads a 250-row tie."""
    ids: list[int] = []
    last_id = 0
    while True:
        filters = [
            {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(big_tie_ms)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
        ]
        sort = {"propertyName": "hs_object_id", "direction": "ASCENDING"}
        page = big_apis.search.do_search(
            public_object_search_request=search_request(filters, sort=sort, limit=200)
        )
        ids += [int(contact.id) for contact in page.results]
        if len(page.results) < 200:
            break
        last_id = ids[-1]
    assert len(ids) == len(set(ids)) == 250
    assert ids == sorted(ids)


def test_search_shuffles_ties_differently_per_request(big_apis: Apis, big_tie_ms: int) -> None:
    """Rows sharing a sort value come back in a different order on each request."""
    filters = [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(big_tie_ms)}]
    sort = {"propertyName": "lastmodifieddate", "direction": "ASCENDING"}
    request = search_request(filters, sort=sort, limit=200)
    first = [c.id for c in big_apis.search.do_search(public_object_search_request=request).results]
    second = [c.id for c in big_apis.search.do_search(public_object_search_request=request).results]
    assert first != second


def test_search_page_before_the_cap_still_offers_after_10000(big_apis: Apis) -> None:
    """The page ending at result 10,000 offers ``after="10000"`` and the true ``total``."""
    filters = [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "0"}]
    page = big_apis.search.do_search(
        public_object_search_request=search_request(filters, limit=200, after="9800")
    )
    assert page.total > 10_000
    assert page.paging.next.after == "10000"


def test_search_after_10000_is_a_400_even_with_limit_1(big_apis: Apis) -> None:
    """Following ``after="10000"`` fails with a 400 ``VALIDATION_ERROR``, whatever the limit."""
    filters = [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "0"}]
    with pytest.raises(ApiException) as caught:
        big_apis.search.do_search(
            public_object_search_request=search_request(filters, limit=1, after="10000")
        )
    assert caught.value.status == 400
    assert error_json(caught.value)["category"] == "VALIDATION_ERROR"


# --- batch read, batch update, PATCH --------------------------------------------------------


def test_batch_read_missing_ids_is_a_207_with_object_not_found(apis: Apis) -> None:
    """Reading a mix of known and unknown ids answers 207 and names the missing ids."""
    body = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": "1001"}, {"id": "999999"}, {"id": "1001"}], properties=["email"]
    )
    data, status, _ = apis.batch.read_with_http_info(batch_read_input_simple_public_object_id=body)
    assert status == 207
    assert [contact.id for contact in data.results] == ["1001"]
    assert data.errors[0].category == "OBJECT_NOT_FOUND"
    assert data.errors[0].context == {"ids": ["999999"]}


def test_batch_read_all_found_is_a_200_without_errors(apis: Apis) -> None:
    """When every id exists, batch read answers 200 and carries no errors."""
    body = BatchReadInputSimplePublicObjectId(inputs=[{"id": "1002"}, {"id": "1003"}])
    data, status, _ = apis.batch.read_with_http_info(batch_read_input_simple_public_object_id=body)
    assert status == 200
    assert not hasattr(data, "errors")  # a 200 deserializes to the model without errors
    assert {contact.id for contact in data.results} == {"1002", "1003"}


def test_batch_read_more_than_100_inputs_is_a_400(apis: Apis) -> None:
    """Batch read takes at most 100 inputs."""
    body = BatchReadInputSimplePublicObjectId(inputs=[{"id": str(1001 + n)} for n in range(101)])
    with pytest.raises(ApiException) as caught:
        apis.batch.read(batch_read_input_simple_public_object_id=body)
    assert caught.value.status == 400


def test_batch_update_duplicate_ids_is_a_400(apis: Apis) -> None:
    """The same id twice in one batch update fails the whole call."""
    inputs = [{"id": "1001", "properties": {"hs_lead_status": "OPEN"}}] * 2
    with pytest.raises(ApiException) as caught:
        apis.batch.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert caught.value.status == 400
    assert "Duplicate IDs found in batch input: [1001]" in error_json(caught.value)["message"]


def test_batch_update_invalid_option_fails_the_whole_batch(
    apis: Apis, portal: HubSpotPortal
) -> None:
    """One invalid enumeration value rejects every input of the batch with a 400."""
    inputs = [
        {"id": "1001", "properties": {"hs_lead_status": "OPEN"}},
        {"id": "1002", "properties": {"hs_lead_status": "open"}},
    ]
    with pytest.raises(ApiException) as caught:
        apis.batch.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert caught.value.status == 400
    assert "INVALID_OPTION" in error_json(caught.value)["message"]
    contact = portal.get("1001")
    assert contact is not None
    assert contact["properties"].get("hs_lead_status") is None


def test_batch_update_bumps_lastmodifieddate(apis: Apis, portal: HubSpotPortal) -> None:
    """A write moves ``lastmodifieddate`` to the write time, so write-backs come back in a pull."""
    inputs = [{"id": "1001", "properties": {"hs_lead_status": "CONNECTED"}}]
    data = apis.batch.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert data.results[0].properties["hs_lead_status"] == "CONNECTED"
    contact = portal.get("1001")
    assert contact is not None
    assert contact["properties"]["lastmodifieddate"] == "2025-10-09T08:53:20.000Z"  # NOW_MS


def test_batch_update_unknown_id_is_a_207(apis: Apis) -> None:
    """Updating an id that does not exist answers 207 with ``OBJECT_NOT_FOUND``."""
    inputs = [
        {"id": "1001", "properties": {"hs_lead_status": "OPEN"}},
        {"id": "999999", "properties": {"hs_lead_status": "OPEN"}},
    ]
    data, status, _ = apis.batch.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(inputs=inputs)
    )
    assert status == 207
    assert data.errors[0].context == {"ids": ["999999"]}


def test_patch_unknown_id_is_a_404(apis: Apis) -> None:
    """PATCH on an unknown id raises the client's ``NotFoundException`` with the documented body."""
    with pytest.raises(NotFoundException) as caught:
        apis.basic.update("999999", SimplePublicObjectInput(properties={"firstname": "X"}))
    assert error_json(caught.value)["category"] == "OBJECT_NOT_FOUND"


def test_patch_empty_string_clears_a_property(apis: Apis, portal: HubSpotPortal) -> None:
    """PATCH with ``""`` clears the property, which then reads back as ``None``."""
    apis.basic.update("1002", SimplePublicObjectInput(properties={"budget": ""}))
    contact = apis.basic.get_by_id("1002", properties=["budget"])
    assert contact.properties["budget"] is None


# --- properties -----------------------------------------------------------------------------


def test_properties_list_custom_and_enumeration_definitions(apis: Apis) -> None:
    """The property list holds section 2's custom properties and the default stage options."""
    by_name = {prop.name: prop for prop in apis.properties.get_all("contacts").results}
    assert {"budget", "timeline_days", "need", "pain_point"} <= set(by_name)
    assert by_name["budget"].type == "string"
    assert by_name["need"].field_type == "textarea"
    assert [option.value for option in by_name["lifecyclestage"].options] == [
        "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
        "customer", "evangelist", "other",
    ]  # fmt: skip
    assert {"MANUFACTURING", "MACHINERY"} <= {o.value for o in by_name["industry"].options}
    assert by_name["lastmodifieddate"].type == "datetime"


# --- auth, faults and rate limits -----------------------------------------------------------


def test_bad_token_is_a_401_unauthorized_exception(sim: HubSpotSimulator) -> None:
    """A wrong token raises ``UnauthorizedException`` with category ``INVALID_AUTHENTICATION``."""
    apis = Apis.connect(sim.base_url, token="pat-wrong")
    try:
        with pytest.raises(UnauthorizedException) as caught:
            apis.basic.get_page()
    finally:
        apis.close()
    assert error_json(caught.value)["category"] == "INVALID_AUTHENTICATION"


def test_injected_429_surfaces_as_api_exception_with_the_documented_body(
    sim: HubSpotSimulator, apis: Apis
) -> None:
    """An injected search 429 is a plain ``ApiException`` carrying the ``RATE_LIMIT`` body."""
    sim.inject_rate_limit("SECONDLY", path_pattern=r"/search$")
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=search_request())
    assert caught.value.status == 429
    body = error_json(caught.value)
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "SECONDLY"
    assert apis.search.do_search(public_object_search_request=search_request()).total == 25


def test_injected_retry_after_is_sent_only_when_asked(sim: HubSpotSimulator, apis: Apis) -> None:
    """``Retry-After`` appears on an injected 429 only when the test sets it.

    Search is a POST, which urllib3's default ``Retry`` never repeats; a GET 429 carrying
    ``Retry-After`` would be slept on and retried inside the client before it surfaced.
    """
    sim.inject_rate_limit("SECONDLY", retry_after_s=2, path_pattern=r"/search$")
    sim.inject_rate_limit("SECONDLY", path_pattern=r"/search$")
    with pytest.raises(ApiException) as with_header:
        apis.search.do_search(public_object_search_request=search_request())
    with pytest.raises(ApiException) as without_header:
        apis.search.do_search(public_object_search_request=search_request())
    assert with_header.value.headers["Retry-After"] == "2"
    assert "Retry-After" not in without_header.value.headers


def test_fault_plan_answers_and_counts_the_call(sim: HubSpotSimulator, apis: Apis) -> None:
    """A ``Fault`` answers the matching request, and the call log still counts it."""
    sim.faults.add(Fault("POST", r"/search$", Response(503, {"message": "down"}), times=1))
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=search_request())
    assert caught.value.status == 503
    assert sim.calls.count(SEARCH) == 1


def test_non_search_responses_carry_rate_limit_headers(
    limited: tuple[HubSpotSimulator, Apis],
) -> None:
    """List answers carry the daily and ten-second budgets in ``X-HubSpot-RateLimit-*``."""
    _, apis = limited
    _, _, headers = apis.basic.get_page_with_http_info(limit=1)
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "999"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_burst_limit_answers_ten_secondly_rolling_429_with_headers(
    limited: tuple[HubSpotSimulator, Apis], clock: FakeClock
) -> None:
    """The call past the 10-second budget gets a ``TEN_SECONDLY_ROLLING`` 429 with headers."""
    _, apis = limited
    for _ in range(3):
        apis.basic.get_page(limit=1)
    with pytest.raises(ApiException) as caught:
        apis.basic.get_page(limit=1)
    assert caught.value.status == 429
    assert error_json(caught.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    clock.advance(10_000)
    assert apis.basic.get_page(limit=1).results


def test_search_limit_answers_secondly_429_without_headers(
    limited: tuple[HubSpotSimulator, Apis],
) -> None:
    """Search past its per-second budget gets a ``SECONDLY`` 429 and still no rate-limit headers."""
    _, apis = limited
    for _ in range(2):
        apis.search.do_search(public_object_search_request=search_request())
    with pytest.raises(ApiException) as caught:
        apis.search.do_search(public_object_search_request=search_request())
    assert caught.value.status == 429
    assert error_json(caught.value)["policyName"] == "SECONDLY"
    assert "X-HubSpot-RateLimit-Remaining" not in caught.value.headers


def test_unknown_route_is_a_json_404(sim: HubSpotSimulator) -> None:
    """An unknown path answers 404 with a JSON body."""
    request = urllib.request.Request(
        f"{sim.base_url}/crm/v3/objects/widgets", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=5)
    with caught.value as error:
        assert error.code == 404
        assert json.load(error)["status"] == "error"
