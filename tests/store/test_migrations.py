"""One migration history for both backends; a pre-revision SQLite file upgrades in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from crmbridge.errors import StateStoreError
from crmbridge.model import Cursor, Outcome
from crmbridge.ports import RejectFilter
from crmbridge.state import open_store, schema_revisions
from crmbridge.state.schema import metadata
from crmbridge.state.search import FTS_TABLE, TRIGRAM_INDEX
from tests.decisions import SALESFORCE_ID, decision

from .legacy_store import CURSOR, HISTORY, OPEN_REJECT, PARKED, STREAM, build_legacy_store


def _engine_url(store_url: str) -> str:
    return store_url.replace("postgresql://", "postgresql+psycopg://", 1)


def _declared(name: str | None, type_: str, parents: object) -> bool:
    """Leave out the free-text search's index, which only the backend's own SQL declares."""
    del type_, parents
    return not (name or "").startswith((FTS_TABLE, TRIGRAM_INDEX))


def test_migrations_build_exactly_the_declared_schema(store_url: str) -> None:
    """The tables the revisions build match ``schema.py`` on each backend, index for index."""
    open_store(store_url, create=True).close()
    engine = create_engine(_engine_url(store_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _declared})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_new_store_is_at_the_newest_revision(store_url: str) -> None:
    """A store made now reports the newest revision as its own."""
    open_store(store_url, create=True).close()
    current, head = schema_revisions(store_url)
    assert current == head == "0007"


@pytest.mark.parametrize("user_version", [1, 2])
def test_a_pre_revision_sqlite_file_upgrades_in_place(tmp_path: Path, user_version: int) -> None:
    """A file from before schema revisions opens with its cursor, ledger, rejects and parked."""
    path = tmp_path / "crmbridge.db"
    build_legacy_store(path, user_version=user_version)
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.get_cursor(STREAM) == Cursor(*CURSOR)
        ledger = store.ledger(["1", "2", "3"])
        assert (ledger["1"].status, ledger["1"].salesforce_id) == ("synced", SALESFORCE_ID)
        assert ledger["2"].status == "rejected"
        [open_reject] = store.rejects(RejectFilter())
        assert (open_reject.id, open_reject.decision) == (3, OPEN_REJECT)
        assert open_reject.status == "open"
        assert store.count_rejects(RejectFilter(criterion="mapping.Company")) == 1
        assert store.count_rejects(RejectFilter(code="REQUIRED")) == 1
        resolved = store.reject(1)
        assert resolved is not None
        assert (resolved.resolution, resolved.status) == ("synced later", "resolved")
        [parked] = store.parked(10)
        assert (parked.decision, parked.attempts) == (PARKED, 2)
        for contact in ("1", "2", "3", "4"):
            assert store.decisions_of(contact) == [d for d in HISTORY if d.contact_id == contact]
        identity = store.identity()
        assert identity.created_url == f"sqlite:///{path}"
        assert not identity.moved
    finally:
        store.close()
    assert schema_revisions(f"sqlite:///{path}")[0] == "0007"


def test_an_upgraded_file_goes_on_as_a_store(tmp_path: Path) -> None:
    """After the upgrade new decisions get new ids and follow the ledger rules."""
    path = tmp_path / "crmbridge.db"
    build_legacy_store(path)
    store = open_store(f"sqlite:///{path}")
    try:
        store.commit_page(STREAM, [decision("2", Outcome.CREATED, modified_at_ms=3_000)], None)
        assert store.count_rejects(RejectFilter()) == 0
        assert [d.outcome for d in store.decisions_of("2")] == [Outcome.REJECTED, Outcome.CREATED]
        store.commit_page(STREAM, [decision("9", Outcome.REJECTED)], Cursor(9_000, 9))
        [newest] = store.rejects(RejectFilter())
        assert newest.id == len(HISTORY) + 2
    finally:
        store.close()


def test_the_identity_of_an_upgraded_file_is_kept(tmp_path: Path) -> None:
    """The identity given at the upgrade is the one every later open reports."""
    path = tmp_path / "crmbridge.db"
    build_legacy_store(path)
    first = open_store(f"sqlite:///{path}")
    identity = first.identity()
    first.close()
    again = open_store(f"sqlite:///{path}")
    try:
        assert again.identity() == identity
    finally:
        again.close()


def test_a_store_from_a_newer_crmbridge_is_refused(store_url: str) -> None:
    """A schema revision this crmbridge does not know is a clear StateStoreError."""
    open_store(store_url, create=True).close()
    engine = create_engine(_engine_url(store_url))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StateStoreError, match="newer crmbridge"):
        open_store(store_url)


def test_an_unknown_pre_revision_schema_is_refused(tmp_path: Path) -> None:
    """A SQLite file with tables but a schema number crmbridge never wrote is refused."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE decisions (x INTEGER); PRAGMA user_version = 7;")
    conn.close()
    with pytest.raises(StateStoreError, match="unknown schema"):
        open_store(f"sqlite:///{path}")


def test_revision_0006_makes_existing_rejects_open_or_resolved(store_url: str) -> None:
    """A store at 0003 with an open and a resolved reject: after the upgrade the open one is
    open (its status dated from its decision), the resolved one resolved, and the lead source
    read from the stored inputs."""
    from alembic import command as alembic_command  # noqa: PLC0415

    from crmbridge.state import migrate  # noqa: PLC0415

    engine = create_engine(_engine_url(store_url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # the module's database: start empty
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            alembic_command.upgrade(migrate._config(conn), "0003")
            conn.execute(
                text(
                    "INSERT INTO store_meta VALUES ('default', 'id-1', '2026-11-01T00:00:00.000Z',"
                    " :url)"
                ),
                {"url": store_url},
            )
            for row_id, resolved in ((1, None), (2, "2026-11-02T00:00:00.000Z")):
                conn.execute(
                    text(
                        "INSERT INTO decisions (id, pipeline, contact_id, modified_at_ms, outcome,"
                        " stage, rule_set_version, qualified, reasons_json, criteria_json,"
                        " inputs_json, decided_at, resolved_at, resolution) VALUES (:id,"
                        " 'default', :contact, 1, 'rejected', 'qualification', 'v1', false,"
                        " '[]', '[]', :inputs, '2026-11-01T00:00:00.000Z', :resolved, :why)"
                    ),
                    {
                        "id": row_id,
                        "contact": str(row_id),
                        "inputs": '{"hs_analytics_source":"PAID_SEARCH"}',
                        "resolved": resolved,
                        "why": "synced later" if resolved else None,
                    },
                )
    finally:
        engine.dispose()
    store = open_store(store_url)
    try:
        open_one, resolved_one = store.reject(1), store.reject(2)
        assert open_one is not None
        assert resolved_one is not None
        assert (open_one.status, open_one.status_changed_at) == (
            "open",
            "2026-11-01T00:00:00.000Z",
        )
        assert (resolved_one.status, resolved_one.status_changed_at) == (
            "resolved",
            "2026-11-02T00:00:00.000Z",
        )
        assert open_one.decision.lead_source == "PAID_SEARCH"
        assert store.reject_ids(RejectFilter()) == [1]
    finally:
        store.close()
