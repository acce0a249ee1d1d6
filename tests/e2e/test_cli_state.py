"""The state store as a user meets it on the command line: init, status, exit codes 2 and 4."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox
from tests.store.legacy_store import build_legacy_store

from ._cli import base_env, crmbridge


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=40, seed=5, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


@pytest.fixture
def env(box: Sandbox) -> dict[str, str]:
    """Settings for the simulators, with the default (relative) state URL."""
    box.salesforce.reset()
    return {**base_env(), **box.environment(), "CRMBRIDGE_HUBSPOT__SEARCH_PER_S": "100"}


def test_sync_refuses_to_create_a_store(env: dict[str, str], tmp_path: Path) -> None:
    """`sync --once` without a store exits 2 naming the absolute path, the directory and
    `state init`, and creates nothing (a daemon started elsewhere must not push everything)."""
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"no state store at {tmp_path / 'crmbridge.db'}" in result.stderr
    assert f"current directory {tmp_path}" in result.stderr
    assert "crmbridge state init" in result.stderr
    assert not (tmp_path / "crmbridge.db").exists()


def test_state_init_then_sync(env: dict[str, str], tmp_path: Path) -> None:
    """`state init` makes the store and prints where and which; `sync` then uses it and logs
    that identity at its start; `status` shows it."""
    made = crmbridge("state", "init", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "Created a new state store." in made.stdout
    assert f"state store       sqlite:///{tmp_path / 'crmbridge.db'}" in made.stdout
    store_id = made.stdout.split("store id")[1].split()[0]
    synced = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    opened = [
        json.loads(line) for line in synced.stderr.splitlines() if '"state_store_opened"' in line
    ]
    assert [event["store_id"] for event in opened] == [store_id]
    status = crmbridge("status", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"store id          {store_id} (pipeline default)" in status.stdout
    again = crmbridge("state", "init", env=env, cwd=tmp_path)
    assert again.returncode == 0
    assert "already exists; nothing changed" in again.stdout
    assert store_id in again.stdout


def test_a_moved_store_is_named_so(env: dict[str, str], tmp_path: Path) -> None:
    """A store opened somewhere other than where it was made says so in `status`."""
    assert crmbridge("state", "init", env=env, cwd=tmp_path).returncode == 0
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "crmbridge.db", elsewhere / "crmbridge.db")
    status = crmbridge("status", env=env, cwd=elsewhere)
    assert status.returncode == 0, status.stderr
    assert f"at sqlite:///{tmp_path / 'crmbridge.db'}" in status.stdout
    assert "made elsewhere" in status.stdout


@pytest.mark.parametrize("command", [("status",), ("rejects", "list"), ("sync", "--once")])
def test_a_directory_as_store_exits_5(
    env: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A state URL naming a directory stops every command with exit 5 and a hint."""
    env = {**env, "CRMBRIDGE_STATE_URL": f"sqlite:///{tmp_path}"}
    result = crmbridge(*command, env=env, cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    assert f"state store {tmp_path}: is a directory" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_a_store_exits_5(env: dict[str, str], tmp_path: Path) -> None:
    """`status` on a file that is no database names it and says what to do, no traceback."""
    (tmp_path / "crmbridge.db").write_text("not a database\n" * 300)
    result = crmbridge("status", env=env, cwd=tmp_path)
    assert result.returncode == 5
    assert f"state store {tmp_path / 'crmbridge.db'}: is not a SQLite database" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_postgresql_exits_5_without_the_password(tmp_path: Path) -> None:
    """`status` against a PostgreSQL nobody serves names host and database, never the password."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**base_env(), "CRMBRIDGE_STATE_URL": f"postgresql://crm:hunter2@127.0.0.1:{port}/crm"}
    result = crmbridge("status", env=env, cwd=tmp_path)
    assert result.returncode == 5
    assert f"host 127.0.0.1 port {port}, database crm" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_state_current_and_upgrade_on_an_old_file(tmp_path: Path) -> None:
    """`state current` reads an old file without migrating it; `state upgrade` brings it up."""
    build_legacy_store(tmp_path / "crmbridge.db")
    current = crmbridge("state", "current", env=base_env(), cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    assert "schema revision none" in current.stdout
    with closing(sqlite3.connect(tmp_path / "crmbridge.db")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "alembic_version" not in tables
    upgraded = crmbridge("state", "upgrade", env=base_env(), cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema revision 0007 (newest known: 0007)" in upgraded.stdout
    listed = crmbridge("rejects", "list", "--code", "REQUIRED", env=base_env(), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "1-1 of 1" in listed.stdout
