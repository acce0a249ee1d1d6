"""One active runner per pipeline: a second `crmbridge run` waits (SQLite) or stands by
(PostgreSQL), says who holds the pipeline, and takes over when the holder stops or dies."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox
from crmbridge.state import open_store
from tests.store.conftest import (  # noqa: F401 - fixtures
    empty_postgres,
    postgres_database,
    postgres_server,
)

from ._cli import sandbox_env, start
from ._logs import LogTail

UPSERT = "PATCH /composite/sobjects/Lead/{extField}"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=400, seed=5, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


def _env(box: Sandbox, tmp_path: Path, **extra: str) -> dict[str, str]:
    settings = {
        "CRMBRIDGE_POLL_INTERVAL_S": "3600",
        "CRMBRIDGE_HUBSPOT__INDEX_LAG_S": "0",
        "CRMBRIDGE_LEASE_TIMEOUT_S": "3",
        **extra,
    }
    return sandbox_env(box, tmp_path, **settings)


def _run(env: dict[str, str], cwd: Path) -> LogTail:
    return LogTail(start("run", env=env, cwd=cwd))


def _stop(*tails: LogTail) -> None:
    for tail in tails:
        if tail.process.poll() is None:
            tail.process.kill()
        tail.finish()
        for stream in (tail.process.stdout, tail.process.stderr):
            if stream is not None:
                stream.close()


def test_a_second_run_on_one_sqlite_file_waits_and_names_the_holder(
    box: Sandbox, tmp_path: Path
) -> None:
    """The second `run` logs lease_waiting with the first one's host and pid, pushes nothing,
    and starts when the first stops on SIGTERM (which releases the pipeline at once)."""
    env = _env(box, tmp_path)
    first = _run(env, tmp_path)
    second = None
    try:
        first.wait_for("pass_finished")
        upserts = box.salesforce.calls.count(UPSERT)
        assert upserts > 0
        second = _run(env, tmp_path)
        waiting = second.wait_for("lease_waiting")
        assert waiting["holder_pid"] == first.process.pid
        assert waiting["holder_host"] == socket.gethostname()
        assert waiting["pipeline"] == "default"
        assert second.events("lease_acquired") == []
        first.process.send_signal(signal.SIGTERM)
        assert first.finish() == 0
        assert first.events("lease_released")
        second.wait_for("lease_acquired")
        finished = second.wait_for("pass_finished")
        assert (finished["created"], finished["updated"]) == (0, 0)
        assert box.salesforce.calls.count(UPSERT) == upserts
    finally:
        _stop(first, *([second] if second else []))


def test_a_killed_sqlite_holder_is_replaced_at_once(box: Sandbox, tmp_path: Path) -> None:
    """SIGKILL leaves the lease row unexpired, but the file lock died with the process: the
    waiting run takes over with the next token without waiting for the lease timeout."""
    env = _env(box, tmp_path, CRMBRIDGE_LEASE_TIMEOUT_S="3600")
    first = _run(env, tmp_path)
    second = None
    try:
        token = first.wait_for("lease_acquired")["token"]
        first.wait_for("pass_finished")
        second = _run(env, tmp_path)
        second.wait_for("lease_waiting")
        first.process.send_signal(signal.SIGKILL)
        first.finish()
        acquired = second.wait_for("lease_acquired", timeout_s=30)
        assert acquired["token"] == token + 1
    finally:
        _stop(first, *([second] if second else []))


def test_a_postgresql_standby_takes_over_a_killed_replica(
    box: Sandbox,
    tmp_path: Path,
    postgres_database: str,  # noqa: F811 - fixture
) -> None:
    """Two replicas on one database: one holds, the other stands by naming it; SIGKILL the
    holder and the standby takes over within the lease timeout, with the next token."""
    empty_postgres(postgres_database)
    env = _env(box, tmp_path, CRMBRIDGE_STATE_URL=postgres_database)
    open_store(postgres_database, create=True).close()
    first = _run(env, tmp_path)
    second = None
    try:
        token = first.wait_for("lease_acquired")["token"]
        first.wait_for("pass_finished")
        second = _run(env, tmp_path)
        standby = second.wait_for("lease_standby")
        assert standby["holder_pid"] == first.process.pid
        first.process.send_signal(signal.SIGKILL)
        first.finish()
        acquired = second.wait_for("lease_acquired", timeout_s=30)
        assert acquired["token"] == token + 1
        finished = second.wait_for("pass_finished")
        assert (finished["created"], finished["updated"]) == (0, 0)
    finally:
        _stop(first, *([second] if second else []))


def test_a_paused_replica_loses_its_lease_and_stands_by(
    box: Sandbox,
    tmp_path: Path,
    postgres_database: str,  # noqa: F811 - fixture
) -> None:
    """SIGSTOP the holder past its lease: the standby takes over; resumed, the old holder logs
    lease_lost, pushes nothing more and stands by behind the new one."""
    empty_postgres(postgres_database)
    env = _env(box, tmp_path, CRMBRIDGE_STATE_URL=postgres_database, CRMBRIDGE_POLL_INTERVAL_S="1")
    open_store(postgres_database, create=True).close()
    first = _run(env, tmp_path)
    second = None
    try:
        first.wait_for("pass_finished")
        second = _run(env, tmp_path)
        second.wait_for("lease_standby")
        first.process.send_signal(signal.SIGSTOP)
        try:
            second.wait_for("lease_acquired", timeout_s=30)
        finally:
            first.process.send_signal(signal.SIGCONT)
        first.wait_for("lease_lost", timeout_s=30)
        standby = first.wait_for("lease_standby", timeout_s=30)
        assert standby["holder_pid"] == second.process.pid
        passes = len(first.events("pass_finished"))
        second.wait_for("pass_finished", count=2)
        assert len(first.events("pass_finished")) <= passes + 1  # at most the pass under way
    finally:
        _stop(first, *([second] if second else []))
