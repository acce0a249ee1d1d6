"""Salesforce JWT bearer login: the daemon gets new sessions by itself when one expires."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from crmbridge.bootstrap import build_app, require_endpoints
from crmbridge.errors import AuthenticationError, ConfigError, RetryableApiError
from crmbridge.sandbox._server import Fault, Response
from crmbridge.settings import RetrySettings, SalesforceSettings, Settings

from .conftest import World, write_private_key, write_rsa_key

CONSUMER_KEY = "3MVG9sandbox.consumer.key"
USER = "integration@acme.example"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("keys") / "connected-app.key"
    return path, write_rsa_key(path)


@pytest.fixture(autouse=True)
def _same_clock(world: World) -> None:
    world.salesforce.oauth.clock_s = world.clock.s  # assertion expiry is checked on one clock


def jwt_settings(world: World, key_file: Path, **overrides: object) -> Settings:
    base = world.settings()
    salesforce = SalesforceSettings(
        login_url=world.salesforce.url,
        consumer_key=CONSUMER_KEY,
        username=USER,
        private_key_file=key_file,
        ca_bundle=base.salesforce.ca_bundle,
        **overrides,  # type: ignore[arg-type]
    )
    return base.model_copy(update={"salesforce": salesforce})


def test_jwt_login_finds_the_instance_and_syncs(world: World, key_pair: tuple[Path, bytes]) -> None:
    """With only the connected-app settings, crmbridge logs in, learns the instance URL, syncs."""
    key_file, public = key_pair
    world.salesforce.oauth.register(CONSUMER_KEY, public, USER)
    contact = world.add()
    app = build_app(jwt_settings(world, key_file), clock=world.clock.s, sleep=world.slept.append)
    try:
        world.clock.advance(61)
        summary = app.pipeline.run_pass()
    finally:
        app.close()
    assert summary.created == 1
    assert world.lead(contact) is not None
    assert world.salesforce.oauth.logins == 1


def test_expired_session_logs_in_again(world: World, key_pair: tuple[Path, bytes]) -> None:
    """When the session expires mid-run, a new JWT login replaces it and the call is replayed."""
    key_file, public = key_pair
    world.salesforce.oauth.register(CONSUMER_KEY, public, USER)
    app = build_app(jwt_settings(world, key_file), clock=world.clock.s, sleep=world.slept.append)
    try:
        world.add()
        world.clock.advance(61)
        assert app.pipeline.run_pass().created == 1
        world.salesforce.expire_session()
        world.add(modified_ago_s=0)
        world.clock.advance(61)
        summary = app.pipeline.run_pass()
    finally:
        app.close()
    assert summary.stopped_early is None
    assert summary.created == 1
    assert world.salesforce.oauth.logins == 2


def test_user_not_preauthorised_is_an_authentication_error(
    world: World, key_pair: tuple[Path, bytes]
) -> None:
    """Salesforce's invalid_grant description reaches the operator, with what to check."""
    key_file, public = key_pair
    world.salesforce.oauth.register(CONSUMER_KEY, public)  # no user approved
    with pytest.raises(AuthenticationError, match="user hasn't approved this consumer") as caught:
        build_app(jwt_settings(world, key_file), clock=world.clock.s)
    assert caught.value.code == "invalid_grant"


def test_wrong_key_is_refused(world: World, key_pair: tuple[Path, bytes], tmp_path: Path) -> None:
    """An assertion signed with another key than the connected app's certificate is refused."""
    _, public = key_pair
    world.salesforce.oauth.register(CONSUMER_KEY, public, USER)
    other = tmp_path / "other.key"
    write_rsa_key(other)
    with pytest.raises(AuthenticationError, match="invalid assertion"):
        build_app(jwt_settings(world, other), clock=world.clock.s)


def test_half_configured_login_names_what_is_missing(world: World, tmp_path: Path) -> None:
    """Setting some JWT variables names the missing ones, not ACCESS_TOKEN."""
    settings = world.settings()
    partial = settings.model_copy(
        update={"salesforce": SalesforceSettings(consumer_key=CONSUMER_KEY)}
    )
    with pytest.raises(ConfigError) as caught:
        require_endpoints(partial)
    text = str(caught.value)
    assert "CRMBRIDGE_SALESFORCE__USERNAME" in text
    assert "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE" in text
    assert "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN" not in text


def test_key_file_that_is_not_a_key_is_a_config_error(world: World, tmp_path: Path) -> None:
    """A PRIVATE_KEY_FILE that holds no PEM key is reported with the variable's name."""
    bogus = tmp_path / "cert.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\n...\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE"):
        build_app(jwt_settings(world, bogus), clock=world.clock.s)


def _unparseable(path: Path) -> Path:
    path.write_text(
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n",
        encoding="utf-8",
    )
    return path


def _encrypted(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private_key(path, key, passphrase=b"pass phrase")
    return path


def _elliptic(path: Path) -> Path:
    write_private_key(path, ec.generate_private_key(ec.SECP256R1()))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_unparseable, "holds no readable PEM private key"),
        (_encrypted, "encrypted"),
        (_elliptic, "RSA"),
        (lambda p: p, "no file at"),
        (lambda p: p.parent, "is a directory"),
        (lambda p: Path("/etc/hostname/key.pem"), "cannot read"),
    ],
)
def test_unusable_private_key_is_a_config_error(
    world: World, tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    """A key file that cannot sign the assertion stops at start, naming the variable."""
    key_file = make(tmp_path / "app.key")
    with pytest.raises(ConfigError) as caught:
        build_app(jwt_settings(world, key_file), clock=world.clock.s)
    (problem,) = caught.value.problems
    assert str(problem.location) == "environment variable CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE"
    assert message in problem.message
    assert problem.hint
    assert "bm90IGEga2V5" not in str(caught.value)
    assert world.salesforce.calls.count() == 0


def test_issued_token_that_cannot_go_in_a_header_is_retried_unseen(
    world: World, key_pair: tuple[Path, bytes]
) -> None:
    """A login answer whose token holds a line break is retried, never sent nor quoted."""
    key_file, public = key_pair
    world.salesforce.oauth.register(CONSUMER_KEY, public, USER)
    answer = {
        "access_token": "00DBROKEN!tok\r\nX-Injected: 1",
        "instance_url": world.salesforce.url,
    }
    world.salesforce.faults.add(Fault("POST", "/oauth2/token", Response(200, answer), times=9))
    settings = jwt_settings(world, key_file)
    settings = settings.model_copy(update={"retry": RetrySettings(max_attempts=6)})
    with pytest.raises(RetryableApiError) as caught:
        build_app(settings, clock=world.clock.s, sleep=world.slept.append)
    assert "00DBROKEN" not in str(caught.value)
    assert world.salesforce.calls.count("POST /services/oauth2/token") == 6  # the retry budget
    assert world.salesforce.calls.count("GET /sobjects/Lead/describe") == 0
