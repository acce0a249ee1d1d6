"""State URLs: which forms name which store, and what a wrong one says."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.state import parse_location, sqlite_path


def test_sqlite_url_forms() -> None:
    """Relative and absolute SQLite URLs resolve as the contract describes."""
    assert str(sqlite_path("sqlite:///crmbridge.db")) == "crmbridge.db"
    assert str(sqlite_path("sqlite:////var/lib/x.db")) == "/var/lib/x.db"


def test_a_relative_sqlite_path_is_shown_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path is named by its absolute form, so messages say which file is meant."""
    monkeypatch.chdir(tmp_path)
    location = parse_location("sqlite:///state/crmbridge.db")
    assert location.shown == str(tmp_path / "state" / "crmbridge.db")
    assert location.canonical_url == f"sqlite:///{tmp_path / 'state' / 'crmbridge.db'}"


def test_postgresql_url_uses_psycopg_and_hides_the_password() -> None:
    """``postgresql://`` picks the psycopg 3 driver; the shown URL never carries the password."""
    location = parse_location("postgresql://crm:s3cret@db.internal:5433/crmbridge")
    assert location.url.drivername == "postgresql+psycopg"
    assert location.url.password == "s3cret"
    assert "s3cret" not in location.shown
    assert location.shown == "postgresql://crm:***@db.internal:5433/crmbridge"


def test_postgresql_url_needs_a_database() -> None:
    """A PostgreSQL URL without a database name is a configuration error with an example."""
    with pytest.raises(ConfigError, match="names no database"):
        parse_location("postgresql://crm@db.internal")


def test_unsupported_state_url_is_a_config_error() -> None:
    """An unknown scheme names the variable and the supported forms."""
    with pytest.raises(ConfigError, match="CRMBRIDGE_STATE_URL") as raised:
        parse_location("mysql://x")
    assert "postgresql://" in str(raised.value)
