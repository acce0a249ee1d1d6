"""Settings: the CRMBRIDGE_ environment contract and secret handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for key in list(os.environ):
        if key.startswith("CRMBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


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
