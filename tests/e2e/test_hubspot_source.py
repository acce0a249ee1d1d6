"""HubSpotSource against the HubSpot simulator: pacing, index lag, ties, re-stamps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from crmbridge.errors import ConfigError, FatalApiError, RetryableApiError
from crmbridge.model import Cursor, SourceContact
from crmbridge.retry import RetryPolicy
from crmbridge.sandbox._server import Fault, Response
from crmbridge.sandbox.hubspot import HubSpotLimits, HubSpotPortal, HubSpotSimulator
from crmbridge.sandbox.tls import make_local_ca
from crmbridge.settings import HubSpotSettings, RetrySettings
from crmbridge.sources.hubspot import HubSpotSource, SearchPacer

from .conftest import T0_MS, Clock, set_env_ca_bundles

PROPS = frozenset({"email", "lastname"})
#: The attempt cap these tests give the retry policy (a backstop; time bounds it first).
ATTEMPTS = 6


class Harness:
    def __init__(self, limits: HubSpotLimits | None = None, lag_ms: int = 0) -> None:
        self.clock = Clock()
        self.portal = HubSpotPortal(clock_ms=self.clock.ms)
        self.sim = HubSpotSimulator(self.portal, limits=limits, search_index_lag_ms=lag_ms)
        self.sim.start()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)  # the portal's rate-limit windows see time pass

    def source(self, search_per_s: float = 4.0) -> HubSpotSource:
        settings = HubSpotSettings(
            base_url=self.sim.base_url,
            access_token=SecretStr(self.sim.access_token),
            search_per_s=search_per_s,
        )
        pacer = SearchPacer(search_per_s, clock=self.clock.s, sleep=self.sleep)
        retry = RetryPolicy("hubspot", RetrySettings(max_attempts=ATTEMPTS), sleep=self.sleep)
        return HubSpotSource(settings, retry, pacer=pacer)

    def add(self, n: int, ago_ms: int) -> list[str]:
        return [
            self.portal.add_contact(
                {"email": f"c{i}@example.com", "lastname": f"L{i}"},
                modified_at_ms=self.clock.ms() - ago_ms,
            )
            for i in range(n)
        ]


MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_harness() -> Iterator[MakeHarness]:
    """Harnesses with their own portal limits or index lag, each stopped after the test."""
    made: list[Harness] = []

    def _make(limits: HubSpotLimits | None = None, lag_ms: int = 0) -> Harness:
        made.append(Harness(limits=limits, lag_ms=lag_ms))
        return made[-1]

    yield _make
    for harness in made:
        harness.sim.stop()


@pytest.fixture
def h(make_harness: MakeHarness) -> Harness:
    return make_harness()


def pull_all(source: HubSpotSource, since: Cursor, until_ms: int) -> list[SourceContact]:
    return [c for page in source.pull(since, until_ms, PROPS) for c in page.contacts]


def test_pacing_keeps_search_under_the_per_second_limit(make_harness: MakeHarness) -> None:
    """At the default 4 searches a second, a portal limiting search to 5/s never answers 429."""
    harness = make_harness(limits=HubSpotLimits(search_per_s=5))
    for ago in range(3000, 0, -1):
        harness.add(1, ago_ms=ago * 10)
    source = harness.source(search_per_s=4.0)
    contacts = pull_all(source, Cursor(), harness.clock.ms())
    assert len(contacts) == 3000
    assert harness.sim.calls.count("POST /crm/v3/objects/contacts/search") == source.calls
    assert source.calls == 16
    # Pacing waits, never 429 back-offs: every sleep is the pacer's quarter second.
    assert harness.slept
    assert all(s == pytest.approx(0.25) for s in harness.slept)


def test_unpaced_search_is_throttled_and_retried(make_harness: MakeHarness) -> None:
    """Without pacing, the portal's secondly 429s are retried and nothing is lost."""
    harness = make_harness(limits=HubSpotLimits(search_per_s=2))
    for ago in range(1000, 0, -1):
        harness.add(1, ago_ms=ago * 10)
    source = harness.source(search_per_s=1_000_000)
    contacts = pull_all(source, Cursor(), harness.clock.ms())
    assert len({c.id for c in contacts}) == 1000
    assert source.calls > 6  # some calls were answered 429 and repeated


def test_each_contact_once_across_shuffled_ties(h: Harness) -> None:
    """Ties of 450, 200 and 199 contacts (shuffled per request) come back once each, in order."""
    ids = h.add(450, ago_ms=9_000) + h.add(200, ago_ms=8_000) + h.add(199, ago_ms=7_000)
    ids += h.add(5, ago_ms=6_000)
    pages = list(h.source().pull(Cursor(), h.clock.ms(), PROPS))
    contacts = [c for page in pages for c in page.contacts]
    assert sorted(c.id for c in contacts) == sorted(ids)
    keys = [(c.modified_at_ms, c.numeric_id) for c in contacts]
    assert keys == sorted(keys)
    # Every page's cursor covers its contacts and never moves backwards.
    cursors = [page.cursor for page in pages]
    assert cursors == sorted(cursors)
    for page in pages:
        assert all(page.cursor.covers(c) for c in page.contacts)


def test_resuming_from_a_cursor_inside_a_tie(h: Harness) -> None:
    """A pass resumed from (t, id) inside a tie reads the rest of the tie and what follows."""
    tie = sorted(h.add(300, ago_ms=9_000), key=int)
    later = h.add(3, ago_ms=1_000)
    at = T0_MS - 9_000
    rest = pull_all(h.source(), Cursor(at, int(tie[149])), h.clock.ms())
    assert [c.id for c in rest] == tie[150:] + later


def test_window_end_excludes_recent_writes(h: Harness) -> None:
    """Contacts modified after until_ms wait for the next pass."""
    old = h.add(3, ago_ms=120_000)
    recent = h.add(2, ago_ms=10_000)
    until = h.clock.ms() - 60_000
    first = pull_all(h.source(), Cursor(), until)
    assert sorted(c.id for c in first) == sorted(old)
    cursor = Cursor(first[-1].modified_at_ms, first[-1].numeric_id)
    second = pull_all(h.source(), cursor, h.clock.ms())
    assert sorted(c.id for c in second) == sorted(recent)


def test_index_lag_is_covered_by_the_safety_margin(make_harness: MakeHarness) -> None:
    """A write not yet in the search index is invisible; the margin keeps the cursor behind it."""
    harness = make_harness(lag_ms=5_000)
    [contact] = harness.add(1, ago_ms=3_000)  # written 3 s ago, indexed after 5 s
    source = harness.source()
    assert pull_all(source, Cursor(), harness.clock.ms()) == []  # not indexed yet
    margin_ms = 60_000
    assert pull_all(source, Cursor(), harness.clock.ms() - margin_ms) == []
    harness.clock.advance(61)
    found = pull_all(source, Cursor(), harness.clock.ms() - margin_ms)
    assert [c.id for c in found] == [contact]


def test_only_requested_properties_are_read(h: Harness) -> None:
    """The search asks for the mapping's properties plus the cursor's own, nothing more."""
    h.portal.add_contact(
        {"email": "a@example.com", "lastname": "A", "jobtitle": "CEO"},
        modified_at_ms=h.clock.ms() - 1_000,
    )
    [contact] = pull_all(h.source(), Cursor(), h.clock.ms())
    assert set(contact.properties) <= {
        "email",
        "lastname",
        "hs_object_id",
        "lastmodifieddate",
        "createdate",
    }
    assert "jobtitle" not in contact.properties


def test_too_many_properties_is_a_config_error_before_any_call(h: Harness) -> None:
    """A property list HubSpot would refuse (a search body over 3,000 chars) fails fast."""
    many = frozenset(f"custom_property_number_{i}" for i in range(150))
    source = h.source()
    with pytest.raises(ConfigError, match="3000") as caught:
        list(source.pull(Cursor(), h.clock.ms(), many))
    assert "hint:" in str(caught.value)
    assert source.calls == 0


@pytest.mark.parametrize("env_bundle", [True, False])
def test_hubspot_over_https_trusts_the_configured_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_bundle: bool
) -> None:
    """CRMBRIDGE_HUBSPOT__CA_BUNDLE is what the client trusts, with or without the env bundles."""
    set_env_ca_bundles(monkeypatch, present=env_bundle)
    ca = make_local_ca(tmp_path)
    clock = Clock()
    portal = HubSpotPortal(clock_ms=clock.ms)
    portal.add_contact({"email": "a@example.com"}, modified_at_ms=clock.ms() - 1_000)
    with HubSpotSimulator(portal, ssl_context=ca.server_context()) as sim:
        assert sim.base_url.startswith("https://")
        settings = HubSpotSettings(
            base_url=sim.base_url,
            access_token=SecretStr(sim.access_token),
            ca_bundle=ca.ca_path,
        )
        source = HubSpotSource(settings, RetryPolicy("hubspot", RetrySettings()))
        found = pull_all(source, Cursor(), clock.ms())
        assert [c.get("email") for c in found] == ["a@example.com"]
        untrusted = HubSpotSettings(base_url=sim.base_url, access_token=SecretStr("x"))
        never_sleeps = RetryPolicy("hubspot", RetrySettings(), sleep=pytest.fail)
        plain = HubSpotSource(untrusted, never_sleeps)
        with pytest.raises(FatalApiError, match="CERTIFICATE_VERIFY_FAILED"):
            pull_all(plain, Cursor(), clock.ms())


PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1>upstream unavailable</body></html>"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (PROXY_PAGE, "text/html"),
        ("", "text/html"),
        (b"\xff\xfe not utf-8", "application/octet-stream"),
        ("[1, 2]", "application/json"),
        ('"results"', "application/json"),
        ('{"results": {"id": "1"}}', "application/json"),
        ('{"results": [1]}', "application/json"),
        ('{"results": [{"id": "1", "properties": ["x"]}]}', "application/json"),
    ],
)
def test_search_answer_that_is_not_a_search_result_is_retried(
    h: Harness, body: str | bytes, content_type: str
) -> None:
    """An HTTP 200 that is not a search result (a proxy's page, other JSON) is retried."""
    h.portal.add_contact({"email": "a@example.com"}, modified_at_ms=h.clock.ms() - 1_000)
    h.sim.faults.add(Fault("POST", "/search", Response(200, body, content_type=content_type)))
    source = h.source()
    found = pull_all(source, Cursor(), h.clock.ms())
    assert [c.get("email") for c in found] == ["a@example.com"]
    assert source.calls == 2


def test_search_answering_only_proxy_pages_stops_as_an_outage(h: Harness) -> None:
    """When every answer is a proxy's page, the retry budget ends in a retryable error."""
    page = Response(200, PROXY_PAGE, content_type="text/html")
    h.sim.faults.add(Fault("POST", "/search", page, times=10))
    source = h.source()
    with pytest.raises(RetryableApiError, match="not a search result") as caught:
        pull_all(source, Cursor(), h.clock.ms())
    assert "text/html" in str(caught.value)
    assert "Bad Gateway" not in str(caught.value)  # the page itself is never quoted
    assert source.calls == ATTEMPTS


def test_properties_answer_that_is_not_a_property_list_is_retried(h: Harness) -> None:
    """An HTTP 200 to the properties call that is not a property list (a proxy's page) is
    retried like a 5xx, and the next proper answer is read."""
    page = Response(200, PROXY_PAGE, content_type="text/html")
    h.sim.faults.add(Fault("GET", "/crm/v3/properties/contacts", page))
    source = h.source()
    names = {p.name for p in source.contact_properties()}
    assert {"email", "lastname", "hs_analytics_source"} <= names
    assert source.calls == 2


def test_properties_answering_only_proxy_pages_stops_as_an_outage(h: Harness) -> None:
    """When every properties answer is a proxy's page, the retry budget ends in a retryable
    error that names the content type and never quotes the page."""
    page = Response(200, PROXY_PAGE, content_type="text/html")
    h.sim.faults.add(Fault("GET", "/crm/v3/properties/contacts", page, times=10))
    source = h.source()
    with pytest.raises(RetryableApiError, match="not a property list") as caught:
        source.contact_properties()
    assert "text/html" in str(caught.value)
    assert "Bad Gateway" not in str(caught.value)
    assert source.calls == ATTEMPTS
