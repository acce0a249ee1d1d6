"""Settings: the CRMBRIDGE_ environment contract and secret handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from crmbridge.errors import ConfigError
from crmbridge.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for key in list(os.environ):
        if key.startswith("CRMBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def refusal(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    """The ConfigError message for ``variable=value``; it names the variable and has a hint."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert "hint:" in message
    return message


def test_contract_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable named in the settings contract lands in the nested setting it names."""
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__BASE_URL", "http://127.0.0.1:8401/")
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "pat-123")
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__CA_BUNDLE", "/tmp/hs.pem")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__INSTANCE_URL", "https://127.0.0.1:8402")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__ACCESS_TOKEN", "00D-token")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__API_VERSION", "62.0")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__CA_BUNDLE", "/tmp/sf.pem")
    monkeypatch.setenv("CRMBRIDGE_STATE_URL", "sqlite:////var/lib/crmbridge/state.db")
    monkeypatch.setenv("CRMBRIDGE_MAPPINGS_DIR", "/etc/crmbridge/mappings")
    settings = load_settings()
    assert settings.hubspot.base_url == "http://127.0.0.1:8401"
    assert settings.hubspot.access_token is not None
    assert settings.hubspot.access_token.get_secret_value() == "pat-123"
    assert str(settings.hubspot.ca_bundle) == "/tmp/hs.pem"
    assert settings.salesforce.instance_url == "https://127.0.0.1:8402"
    assert settings.salesforce.api_version == "62.0"
    assert str(settings.salesforce.ca_bundle) == "/tmp/sf.pem"
    assert settings.state_url == "sqlite:////var/lib/crmbridge/state.db"
    assert str(settings.mappings_dir) == "/etc/crmbridge/mappings"


def test_defaults_follow_the_contract() -> None:
    """Unset variables take the defaults the contract lists."""
    settings = load_settings()
    assert settings.hubspot.base_url == "https://api.hubapi.com"
    assert settings.salesforce.api_version == "59.0"
    assert settings.state_url == "sqlite:///crmbridge.db"
    assert str(settings.mappings_dir) == "mappings"


def test_secrets_never_show_in_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens are masked in repr, str and the redacted dump that `config show` prints."""
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "pat-very-secret")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__ACCESS_TOKEN", "sf-very-secret")
    settings = load_settings()
    text = repr(settings) + str(settings) + repr(settings.redacted())
    assert "very-secret" not in text
    assert "**********" in text


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """A .env file in the working directory supplies settings."""
    Path(str(tmp_path), ".env").write_text("CRMBRIDGE_POLL_INTERVAL_S=42\n", encoding="utf-8")
    assert load_settings().poll_interval_s == 42


def test_bad_value_names_the_variable_and_gives_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong value is a ConfigError naming the exact variable, with a hint."""
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__API_VERSION", "40.0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "CRMBRIDGE_SALESFORCE__API_VERSION" in message
    assert "46.0" in message
    assert "hint:" in message


def test_plain_http_salesforce_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Salesforce serves TLS only, so an http:// instance URL is a configuration error."""
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__INSTANCE_URL", "http://acme.my.salesforce.com")
    with pytest.raises(ConfigError, match="CRMBRIDGE_SALESFORCE__INSTANCE_URL"):
        load_settings()


@pytest.mark.parametrize(
    "variable", ["CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN"]
)
@pytest.mark.parametrize("padded", ["pat-secret-1\r", "pat-secret-1\r\n", "  pat-secret-1\t\n"])
def test_secrets_lose_surrounding_whitespace(
    monkeypatch: pytest.MonkeyPatch, variable: str, padded: str
) -> None:
    """A token read from a CRLF file (or padded by hand) is used without its whitespace."""
    monkeypatch.setenv(variable, padded)
    settings = load_settings()
    section = settings.hubspot if "HUBSPOT" in variable else settings.salesforce
    assert section.access_token is not None
    assert section.access_token.get_secret_value() == "pat-secret-1"


@pytest.mark.parametrize(
    "variable", ["CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN"]
)
@pytest.mark.parametrize(
    "bad", ["pat-SEK\nRIT-1", "pat-SEK\rRIT-1", "pat-\x1b[2JSEKRIT-1", "pat-\x7fSEKRIT-1"]
)
def test_secret_with_a_control_character_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, bad: str
) -> None:
    """An embedded line break or escape is a ConfigError naming the variable, never the value."""
    message = refusal(monkeypatch, variable, bad)
    assert "control character" in message
    assert "SEK" not in message
    assert "RIT" not in message
    assert "pat-" not in message


def test_secret_with_pasted_quotes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typographic quotes pasted around a token are refused: a header carries only ASCII."""
    message = refusal(monkeypatch, "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "\u201cpat-secret-1\u201d")
    assert "ASCII" in message
    assert "pat-secret-1" not in message


def test_secret_given_in_code_is_cleaned_too() -> None:
    """A SecretStr passed as an override is stripped like one read from the environment."""
    settings = load_settings(hubspot={"access_token": SecretStr("pat-secret-1\r\n")})
    assert settings.hubspot.access_token is not None
    assert settings.hubspot.access_token.get_secret_value() == "pat-secret-1"


def test_plain_text_settings_lose_surrounding_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """URLs, names and paths read from a CRLF env file are used without the carriage return."""
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__INSTANCE_URL", "https://acme.my.salesforce.com\r")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__USERNAME", "ops@acme.example\r")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__CA_BUNDLE", "/etc/ssl/sf.pem\r")
    settings = load_settings()
    assert settings.salesforce.instance_url == "https://acme.my.salesforce.com"
    assert settings.salesforce.username == "ops@acme.example"
    assert str(settings.salesforce.ca_bundle) == "/etc/ssl/sf.pem"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CRMBRIDGE_SALESFORCE__API_VERSION", "59", "write 59.0"),
        ("CRMBRIDGE_SALESFORCE__API_VERSION", "nan", "59.0"),
        ("CRMBRIDGE_SALESFORCE__API_VERSION", "inf", "59.0"),
        ("CRMBRIDGE_SALESFORCE__API_VERSION", "1e3", "59.0"),
        ("CRMBRIDGE_SALESFORCE__API_VERSION", "59.0.1", "59.0"),
        ("CRMBRIDGE_HUBSPOT__INDEX_LAG_S", "inf", "finite"),
        ("CRMBRIDGE_HUBSPOT__INDEX_LAG_S", "nan", "finite"),
        ("CRMBRIDGE_HUBSPOT__INDEX_LAG_S", "1e9", "less than or equal to"),
        ("CRMBRIDGE_POLL_INTERVAL_S", "inf", "finite"),
        ("CRMBRIDGE_POLL_INTERVAL_S", "1e12", "less than or equal to"),
        ("CRMBRIDGE_POLL_INTERVAL_S", "0", "greater than"),
        ("CRMBRIDGE_HUBSPOT__SEARCH_PER_S", "1e-9", "greater than or equal to"),
        ("CRMBRIDGE_HUBSPOT__SEARCH_PER_S", "inf", "finite"),
        ("CRMBRIDGE_HUBSPOT__READ_TIMEOUT_S", "inf", "finite"),
        ("CRMBRIDGE_HUBSPOT__CONNECT_TIMEOUT_S", "1e6", "less than or equal to"),
        ("CRMBRIDGE_SALESFORCE__READ_TIMEOUT_S", "nan", "finite"),
        ("CRMBRIDGE_SALESFORCE__RESERVE_FRACTION", "nan", "finite"),
        ("CRMBRIDGE_RETRY__MAX_WAIT_S", "inf", "finite"),
        ("CRMBRIDGE_RETRY__MAX_TOTAL_S", "1e12", "less than or equal to"),
        ("CRMBRIDGE_STOP_GRACE_S", "inf", "finite"),
    ],
)
def test_numbers_must_be_finite_and_sane(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """Values that would fail every pass, or overflow a wait, stop crmbridge at start."""
    assert expected in refusal(monkeypatch, variable, value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRMBRIDGE_HUBSPOT__BASE_URL", "http://"),
        ("CRMBRIDGE_HUBSPOT__BASE_URL", "https:///crm"),
        ("CRMBRIDGE_HUBSPOT__BASE_URL", "https://api.hubapi.com:port"),
        ("CRMBRIDGE_SALESFORCE__INSTANCE_URL", "https://"),
        ("CRMBRIDGE_SALESFORCE__INSTANCE_URL", "https://:8402"),
        ("CRMBRIDGE_SALESFORCE__INSTANCE_URL", "https://acme my.salesforce.com"),
        ("CRMBRIDGE_SALESFORCE__LOGIN_URL", "https://"),
    ],
)
def test_urls_need_a_host(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """A URL without a usable host is refused at start instead of failing every pass."""
    assert "host" in refusal(monkeypatch, variable, value)


def test_version_with_a_v_prefix_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """`v62.0` is read as 62.0."""
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__API_VERSION", "v62.0")
    assert load_settings().salesforce.api_version == "62.0"


def test_default_timeouts_let_a_stop_finish_inside_systemds_wait() -> None:
    """Every default connect + read timeout, and the stop grace, stay well inside 120 s."""
    settings = load_settings()
    for section in (settings.hubspot, settings.salesforce):
        assert section.connect_timeout_s + section.read_timeout_s <= 90
    assert settings.stop_grace_s <= 30
