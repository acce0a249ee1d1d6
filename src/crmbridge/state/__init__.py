"""State stores. ``open_store(url)`` picks the adapter from the URL scheme."""

from __future__ import annotations

from pathlib import Path

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.state.sqlite import SQLiteStateStore

__all__ = ["SQLiteStateStore", "open_store", "sqlite_path"]


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel.db`` → ``rel.db``; ``sqlite:////abs/path.db`` → ``/abs/path.db``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix:
        raise ConfigError(
            ConfigProblem(
                Location("environment variable CRMBRIDGE_STATE_URL"),
                f"not a SQLite URL: {url!r}",
                hint="use sqlite:///relative.db or sqlite:////absolute/path.db",
            )
        )
    return Path(url[len(prefix) :])


def open_store(url: str, *, create: bool = True) -> SQLiteStateStore:
    """Open the state store a URL names (SQLite today; ``postgresql://`` is the next adapter).

    With ``create=False`` (read-only commands) a missing store is a ConfigError, not a new
    empty file in whatever directory the command ran from."""
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        if not create and not path.exists():
            raise ConfigError(
                ConfigProblem(
                    Location("environment variable CRMBRIDGE_STATE_URL"),
                    f"no state store at {path.resolve()}",
                    hint="run `crmbridge sync --once` first, or point CRMBRIDGE_STATE_URL "
                    "(or --state-url) at the store the daemon writes",
                )
            )
        return SQLiteStateStore(path)
    scheme = url.split(":", 1)[0]
    raise ConfigError(
        ConfigProblem(
            Location("environment variable CRMBRIDGE_STATE_URL"),
            f"unsupported state store scheme {scheme!r}",
            hint="this version supports sqlite:///path.db",
        )
    )
