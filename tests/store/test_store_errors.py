"""A state store that cannot be used says which one, what is wrong and what to do."""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crmbridge.errors import StateStoreError, StateStoreMissingError, StateStoreUnavailableError
from crmbridge.model import Cursor, Outcome
from crmbridge.ports import RejectFilter
from crmbridge.state import open_store
from tests.decisions import decision

from .conftest import empty_postgres

STREAM = "hubspot.contacts"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def filled_store(path: Path, rejects: int = 2_000) -> None:
    """A SQLite store at ``path`` holding ``rejects`` rejects of about 2 KB each."""
    store = open_store(sqlite_url(path), create=True)
    page = [
        decision(str(n), Outcome.REJECTED, inputs={"need": f"{n} " + "x" * 2_000})
        for n in range(rejects)
    ]
    store.commit_page(STREAM, page, Cursor(1_000, rejects))
    store.close()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable for this process: immutable as root (root ignores file modes)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_a_missing_file_is_not_created_and_names_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``create`` a missing file is refused with its absolute path and the current
    directory, and no file appears."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateStoreMissingError) as raised:
        open_store("sqlite:///crmbridge.db")
    message = str(raised.value)
    assert f"no state store at {tmp_path / 'crmbridge.db'}" in message
    assert f"current directory {tmp_path}" in message
    assert "crmbridge state init" in message
    assert not (tmp_path / "crmbridge.db").exists()


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """A state URL naming a directory says so and suggests a file inside it."""
    with pytest.raises(StateStoreError, match="is a directory") as raised:
        open_store(sqlite_url(tmp_path), create=True)
    assert raised.value.location == str(tmp_path)
    assert str(tmp_path / "crmbridge.db") in raised.value.hint


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """A file overwritten with something else is named as not a SQLite database."""
    path = tmp_path / "crmbridge.db"
    path.write_text("these are not the rows you are looking for\n" * 200)
    with pytest.raises(StateStoreError, match="not a SQLite database") as raised:
        open_store(sqlite_url(path))
    assert raised.value.location == str(path)
    assert "backup" in raised.value.hint


@pytest.mark.parametrize("keep", [0.5, 0.05], ids=["half", "header-only"])
def test_a_truncated_file_is_refused(tmp_path: Path, keep: float) -> None:
    """A file cut short (a full disk, a copy interrupted) is reported as damaged, not used."""
    path = tmp_path / "crmbridge.db"
    filled_store(path)
    os.truncate(path, int(path.stat().st_size * keep))
    with pytest.raises(StateStoreError, match="corrupted") as raised:
        open_store(sqlite_url(path))
    assert "backup" in raised.value.hint


def test_corruption_found_while_reading_stops_with_a_store_error(tmp_path: Path) -> None:
    """Pages damaged after the store opened fine surface as a StateStoreError on first read."""
    path = tmp_path / "crmbridge.db"
    filled_store(path)
    # The middle of the decisions table's pages (the search index has pages of its own).
    with closing(sqlite3.connect(path)) as conn:
        pages = [
            int(n) for (n,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'decisions'")
        ]
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    noise = random.Random(7).randbytes(64 * 1024)
    with path.open("r+b") as damaged:
        damaged.seek((sorted(pages)[len(pages) // 2] - 1) * page_size)
        damaged.write(noise)
    store = open_store(sqlite_url(path))
    try:
        with pytest.raises(StateStoreError, match="corrupted") as raised:
            store.rejects(RejectFilter(limit=10_000))
    finally:
        store.close()
    assert raised.value.location == str(path)


def test_a_read_only_file_is_refused_for_writing_but_readable(tmp_path: Path) -> None:
    """A read-only store cannot start a pass (nothing could be recorded) but reports read it."""
    path = tmp_path / "crmbridge.db"
    filled_store(path, rejects=3)
    with read_only(path):
        with pytest.raises(StateStoreError, match="read-only") as raised:
            open_store(sqlite_url(path))
        assert "writable" in raised.value.hint
        reader = open_store(sqlite_url(path), read_only=True)
        try:
            assert reader.count_rejects(RejectFilter()) == 3
        finally:
            reader.close()


def test_an_unwritable_directory_cannot_hold_a_new_store(tmp_path: Path) -> None:
    """``state init`` into a directory nobody may write names the path and the fix."""
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked), pytest.raises(StateStoreError, match="cannot be opened") as raised:
        open_store(sqlite_url(locked / "crmbridge.db"), create=True)
    assert raised.value.location == str(locked / "crmbridge.db")
    assert not (locked / "crmbridge.db").exists()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_postgresql_names_host_and_database_never_the_password() -> None:
    """A PostgreSQL nobody listens for gives host, port and database, and hides the password."""
    port = _closed_port()
    with pytest.raises(StateStoreError, match="refused or lost the connection") as raised:
        open_store(f"postgresql://crm:hunter2@127.0.0.1:{port}/crmbridge")
    message = f"{raised.value}\n{raised.value.hint}"
    assert f"host 127.0.0.1 port {port}, database crmbridge" in message
    assert "hunter2" not in message
    assert raised.value.location == f"postgresql://crm:***@127.0.0.1:{port}/crmbridge"


def test_a_refused_postgresql_login_is_a_store_error(postgres_server: str) -> None:
    """A user the server does not know is refused with the server's reason, password hidden."""
    url = make_url(postgres_server).set(username="nobody_here", password="hunter2")
    with pytest.raises(StateStoreError, match="nobody_here") as raised:
        open_store(url.render_as_string(hide_password=False))
    assert "hunter2" not in str(raised.value)


@contextmanager
def connections_refused(server: str, database: str) -> Iterator[None]:
    """``database`` takes no connection and loses the ones it had, as in a server restart."""
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()


def test_postgresql_going_away_after_the_start_is_retryable(
    postgres_server: str, postgres_database: str
) -> None:
    """A database that drops its connections mid-run stops the call with a retryable error (the
    pass ends early, cursor kept); the same store answers again once the database is back."""
    empty_postgres(postgres_database)
    store = open_store(postgres_database, create=True)
    database = make_url(postgres_database).database
    assert database is not None
    try:
        with connections_refused(postgres_server, database):
            with pytest.raises(StateStoreUnavailableError, match="state store: postgresql://"):
                store.get_cursor(STREAM)
            with pytest.raises(StateStoreError, match="refused or lost the connection"):
                open_store(postgres_database)
        store.commit_page(STREAM, [], Cursor(7, 7))
        assert store.get_cursor(STREAM) == Cursor(7, 7)
    finally:
        store.close()
