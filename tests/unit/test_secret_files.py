"""Secret settings read from files named by CRMBRIDGE_…_FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN",
        "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN",
        "CRMBRIDGE_STATE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here


def test_secrets_come_from_the_files_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each _FILE variable's file gives its setting, the trailing newline removed."""
    (tmp_path / "hs").write_text("pat-na1-123\n", encoding="utf-8")
    (tmp_path / "db").write_text("postgresql://crm:s3cret@db:5432/crm\n", encoding="utf-8")
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN_FILE", str(tmp_path / "hs"))
    monkeypatch.setenv("CRMBRIDGE_STATE_URL_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__BASE_URL", "http://127.0.0.1:9")
    settings = load_settings()
    assert settings.hubspot.access_token is not None
    assert settings.hubspot.access_token.get_secret_value() == "pat-na1-123"
    assert settings.hubspot.base_url == "http://127.0.0.1:9"  # the rest of the section stays
    assert settings.state_url == "postgresql://crm:s3cret@db:5432/crm"


def test_a_missing_file_or_both_forms_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An unreadable file, or a variable set together with its _FILE twin, is a ConfigError
    naming the variable and never the value."""
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__ACCESS_TOKEN_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "tok-visible")
    (tmp_path / "hs").write_text("tok-file", encoding="utf-8")
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN_FILE", str(tmp_path / "hs"))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    where = [str(p.location) for p in caught.value.problems]
    assert where == [
        "environment variable CRMBRIDGE_HUBSPOT__ACCESS_TOKEN_FILE",
        "environment variable CRMBRIDGE_SALESFORCE__ACCESS_TOKEN_FILE",
    ]
    assert "tok-" not in str(caught.value)


def test_a_secret_file_with_a_control_character_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The usual checks apply to a value read from a file: a line break inside is refused."""
    (tmp_path / "sf").write_text("00D!abc\r\nX-Injected: 1\n", encoding="utf-8")
    monkeypatch.setenv("CRMBRIDGE_SALESFORCE__ACCESS_TOKEN_FILE", str(tmp_path / "sf"))
    with pytest.raises(ConfigError, match="CRMBRIDGE_SALESFORCE__ACCESS_TOKEN"):
        load_settings()
