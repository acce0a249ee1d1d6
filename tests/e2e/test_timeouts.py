"""Every HTTP call has connect and read timeouts: an upstream that never answers is an outage
the pass survives (retried, then stopped with its cursor kept), never a frozen process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from crmbridge.errors import RetryableApiError
from crmbridge.model import Cursor
from crmbridge.retry import RetryPolicy
from crmbridge.settings import HubSpotSettings, RetrySettings, SalesforceSettings
from crmbridge.sinks.salesforce import SalesforceSink, build_session
from crmbridge.sinks.salesforce_auth import JwtBearerLogin
from crmbridge.sources.hubspot import HubSpotSource

from .conftest import World, write_rsa_key

ONE_TRY = RetrySettings(max_attempts=1)
SHORT = {"connect_timeout_s": 0.5, "read_timeout_s": 0.5}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose connections are accepted (by the kernel) and never answered."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def hubspot_source(base_url: str, token: str) -> HubSpotSource:
    settings = HubSpotSettings(base_url=base_url, access_token=SecretStr(token), **SHORT)
    return HubSpotSource(settings, RetryPolicy("hubspot", ONE_TRY, sleep=lambda s: None))


def test_hubspot_call_to_a_silent_socket_times_out(silent_port: int) -> None:
    """A HubSpot host that accepts the connection and never answers ends in a retryable error."""
    source = hubspot_source(f"http://127.0.0.1:{silent_port}", "pat-timeout")
    with pytest.raises(RetryableApiError, match=r"(?i)timed out"):
        list(source.pull(Cursor(), 10**13, frozenset({"email"})))


def test_hubspot_search_that_hangs_times_out(world: World) -> None:
    """A search the portal reads and never answers ends in a retryable error."""
    world.hubspot.inject_hang(path_pattern="/search")
    source = hubspot_source(world.hubspot.base_url, world.hubspot.access_token)
    with pytest.raises(RetryableApiError, match=r"(?i)timed out"):
        list(source.pull(Cursor(), 10**13, frozenset({"email"})))


def assert_describe_times_out(instance_url: str, token: str, ca_bundle: str | None) -> None:
    settings = SalesforceSettings(
        instance_url=instance_url,
        access_token=SecretStr(token),
        ca_bundle=Path(ca_bundle) if ca_bundle else None,
        **SHORT,
    )
    sink = SalesforceSink(
        settings,
        RetryPolicy("salesforce", ONE_TRY, sleep=lambda s: None),
        external_id_field="HubSpot_Contact_Id__c",
    )
    try:
        with pytest.raises(RetryableApiError, match=r"(?i)timed out"):
            sink.describe()
    finally:
        sink.close()


def test_salesforce_call_that_hangs_times_out(world: World) -> None:
    """A Salesforce describe that never answers ends in a retryable error."""
    world.salesforce.inject_hang(path_pattern="/describe")
    sf = world.salesforce
    assert_describe_times_out(sf.url, sf.access_token, sf.ca_path)


def test_salesforce_silent_socket_times_out(silent_port: int) -> None:
    """A Salesforce host that accepts TCP and never starts TLS ends in a retryable error."""
    assert_describe_times_out(f"https://127.0.0.1:{silent_port}", "00D-timeout", None)


def test_jwt_login_that_hangs_times_out(world: World, tmp_path: Path) -> None:
    """A token endpoint that never answers ends the login attempt in a retryable error."""
    key_file = tmp_path / "app.key"
    world.salesforce.oauth.register("key", write_rsa_key(key_file), "ops@acme.example")
    world.salesforce.inject_hang(path_pattern="/oauth2/token")
    settings = SalesforceSettings(
        login_url=world.salesforce.url,
        consumer_key="key",
        username="ops@acme.example",
        private_key_file=key_file,
        ca_bundle=Path(world.salesforce.ca_path),
        **SHORT,
    )
    login = JwtBearerLogin(
        settings,
        RetryPolicy("salesforce-login", ONE_TRY, sleep=lambda s: None),
        session=build_session(world.salesforce.ca_path),
    )
    try:
        with pytest.raises(RetryableApiError, match=r"(?i)timed out"):
            login()
    finally:
        login.close()
