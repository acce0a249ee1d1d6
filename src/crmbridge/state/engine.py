"""Where a state store lives and how to talk to it: URL parsing, the SQLAlchemy engine per
backend, and the translation of driver errors into ``StateStoreError`` with a hint.

The dialect differences of the store live here and in ``store.py``'s upsert; nothing else
knows which backend it runs on.

- SQLite (the default): WAL journal, so the CLI reads while the daemon writes; a write
  transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock up front instead of
  failing to upgrade a read lock halfway); a 30 s busy timeout.
- PostgreSQL (``postgresql://``, driver psycopg 3): a connect timeout, and a pre-ping so a
  daemon survives a database restart between passes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, StaticPool, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from crmbridge.errors import (
    ConfigError,
    ConfigProblem,
    Location,
    StateStoreError,
    StateStoreUnavailableError,
)

STATE_URL_SETTING = "environment variable CRMBRIDGE_STATE_URL"
SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_CONNECT_TIMEOUT_S = 10
#: Execution option: the transaction about to begin writes (SQLite: BEGIN IMMEDIATE).
WRITES = "crmbridge_writes"

_SUPPORTED = "use sqlite:///relative.db, sqlite:////absolute/path.db or postgresql://user@host/db"


@dataclass(frozen=True)
class StoreLocation:
    """A parsed state URL: the engine URL, and the text that names the store to a person
    (an absolute path for SQLite, the URL without its password for PostgreSQL)."""

    url: URL
    shown: str
    sqlite_path: Path | None = None

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def canonical_url(self) -> str:
        """The URL that names this store wherever it is opened from (recorded at creation)."""
        if self.sqlite_path is not None:
            return f"sqlite:///{self.sqlite_path}"
        return "sqlite:///:memory:" if self.in_memory else self.shown

    @property
    def in_memory(self) -> bool:
        return self.sqlite_path is None and self.backend == "sqlite"


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel.db`` → ``rel.db``; ``sqlite:////abs/path.db`` → ``/abs/path.db``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix:
        raise ConfigError(
            ConfigProblem(
                Location(STATE_URL_SETTING),
                f"not a SQLite URL: {url!r}",
                hint="use sqlite:///relative.db or sqlite:////absolute/path.db",
            )
        )
    return Path(url[len(prefix) :])


def parse_location(url: str) -> StoreLocation:
    """Parse ``CRMBRIDGE_STATE_URL``; a malformed or unsupported URL is a ConfigError."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        path = sqlite_path(url)
        if str(path) == ":memory:":
            return StoreLocation(make_url("sqlite+pysqlite://"), "sqlite::memory:")
        absolute = Path(os.path.abspath(path))
        return StoreLocation(
            URL.create("sqlite+pysqlite", database=str(absolute)), str(absolute), absolute
        )
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        try:
            parsed = make_url(url.replace(scheme, "postgresql+psycopg", 1))
        except ArgumentError as exc:
            raise ConfigError(
                ConfigProblem(Location(STATE_URL_SETTING), f"not a valid URL: {exc}", _SUPPORTED)
            ) from None
        if not parsed.database:
            raise ConfigError(
                ConfigProblem(
                    Location(STATE_URL_SETTING),
                    "the PostgreSQL URL names no database",
                    hint="postgresql://user:password@host:5432/database",
                )
            )
        shown = parsed.set(drivername="postgresql").render_as_string(hide_password=True)
        return StoreLocation(parsed, shown)
    raise ConfigError(
        ConfigProblem(
            Location(STATE_URL_SETTING),
            f"unsupported state store scheme {scheme!r}",
            hint=_SUPPORTED,
        )
    )


def make_engine(location: StoreLocation) -> Engine:
    """The SQLAlchemy engine for ``location``, set up as the module docstring says."""
    if location.backend == "sqlite":
        engine = create_engine(
            location.url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            poolclass=StaticPool if location.in_memory else None,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        location.url,
        connect_args={
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "application_name": "crmbridge",
        },
        pool_pre_ping=True,
    )


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, record: object) -> None:
    del record
    # SQLAlchemy's "begin" hook below issues BEGIN itself, so pysqlite must not.
    dbapi_connection.isolation_level = None
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _sqlite_on_begin(conn: Connection) -> None:
    writes = conn.get_execution_options().get(WRITES, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextmanager
def store_errors(location: StoreLocation, *, opened: bool = False) -> Iterator[None]:
    """Turn a driver error into a ``StateStoreError`` that names the store and what to do.

    Once the store is ``opened`` (during a pass), a connection that is lost or refused, or a
    SQLite lock held past the busy timeout, is a ``StateStoreUnavailableError`` instead: the
    pass stops early and the next one retries, as for an API outage. Programming errors (a
    constraint violated, bad SQL) are bugs and pass through."""
    try:
        yield
    except DBAPIError as exc:
        if exc.orig is None or not _is_store_problem(exc.orig):
            raise
        raise _translated(location, exc.orig, opened=opened) from exc
    except sqlite3.Error as exc:  # raised by the connect hook, outside SQLAlchemy's wrapping
        if not _is_store_problem(exc):
            raise
        raise _translated(location, exc, opened=opened) from exc


def _translated(
    location: StoreLocation, error: BaseException, *, opened: bool
) -> StateStoreError | StateStoreUnavailableError:
    if opened and _is_transient(error):
        return StateStoreUnavailableError(location.shown, _first_line(error))
    return _store_error(location, error)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", "") or ""
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


def _first_line(error: BaseException) -> str:
    text_ = str(error).strip()
    return text_.splitlines()[0] if text_ else type(error).__name__


#: Driver errors that say the store cannot be used (as opposed to a bug in a statement).
_PG_STORE_ERRORS = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.DataCorrupted,
    psycopg.errors.InsufficientPrivilege,
)


def _is_store_problem(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return not isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError)
    return isinstance(error, _PG_STORE_ERRORS)


#: SQLite result codes → (what is wrong, what to do). Extended codes match by prefix.
_SQLITE_PROBLEMS: dict[str, tuple[str, str]] = {
    "SQLITE_READONLY": (
        "is read-only",
        "crmbridge writes to its state store, even for `status` (SQLite's WAL journal files "
        "-wal and -shm beside it): make the file and its directory writable by the user "
        "crmbridge runs as, or copy the file somewhere writable and point "
        "CRMBRIDGE_STATE_URL at the copy",
    ),
    "SQLITE_CANTOPEN": (
        "cannot be opened",
        "check that the path is a file, that its directory exists and that the user "
        "crmbridge runs as may write there (the WAL journal files live beside it)",
    ),
    "SQLITE_NOTADB": (
        "is not a SQLite database (overwritten, truncated or not a state store)",
        "check CRMBRIDGE_STATE_URL points at the state file; restore it from a backup, or "
        "start over with `crmbridge state init` on a new path (everything is pushed again)",
    ),
    "SQLITE_CORRUPT": (
        "is corrupted (database disk image is malformed)",
        "stop crmbridge and restore the file from a backup; `sqlite3 FILE .recover` may "
        "save its rows; `crmbridge state init` on a new path starts over",
    ),
    "SQLITE_BUSY": (
        "is locked by another process",
        "another crmbridge (or a tool) holds its write lock: stop it, or wait and retry",
    ),
    "SQLITE_LOCKED": (
        "is locked by another process",
        "another crmbridge (or a tool) holds its write lock: stop it, or wait and retry",
    ),
    "SQLITE_FULL": ("cannot grow: the disk is full", "free disk space, then run again"),
    "SQLITE_IOERR": (
        "cannot be read or written (I/O error)",
        "check the disk and the file system it is on (a network share may not support locks)",
    ),
    "SQLITE_PERM": (
        "is not accessible (permission denied)",
        "give the user crmbridge runs as read and write access to the file and its directory",
    ),
}


def _store_error(location: StoreLocation, error: BaseException) -> StateStoreError:
    detail = _first_line(error)
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", "") or ""
        for prefix, (problem, hint) in _SQLITE_PROBLEMS.items():
            if name.startswith(prefix):
                said = problem if detail in problem else f"{problem} ({detail})"
                return StateStoreError(location.shown, said, hint=hint)
        return StateStoreError(
            location.shown,
            f"cannot be used ({detail})",
            hint="check the file and the disk it is on; restore it from a backup if it is damaged",
        )
    url = location.url
    where = f"host {url.host or 'localhost'} port {url.port or 5432}, database {url.database}"
    return StateStoreError(
        location.shown,
        f"PostgreSQL refused or lost the connection ({where}, user {url.username}): {detail}",
        hint="check that the server runs and accepts this user and password "
        "(CRMBRIDGE_STATE_URL; the password is never shown)",
    )


def connection_options(*, writes: bool) -> dict[str, Any]:
    """Execution options for a connection whose next transaction reads or writes."""
    return {WRITES: writes}
