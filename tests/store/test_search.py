"""The reject log's free-text search on its index (SQLite FTS5 trigram, PostgreSQL pg_trgm), the
scan it falls back to, and revision 0007 filling the searchable text of an existing store."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pytest
from alembic import command as alembic_command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from crmbridge.model import Cursor, Outcome, Reason
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.state import migrate, open_store
from crmbridge.state.search import FTS_TABLE, TRIGRAM_INDEX, normalise, searchable_text
from tests.decisions import decision

STREAM = "hubspot.contacts"


def _engine_url(store_url: str) -> str:
    return store_url.replace("postgresql://", "postgresql+psycopg://", 1)


def _seed(store: StateStore) -> dict[str, int]:
    """Four rejects and a synced lead, with what each search below should find."""
    rows = [
        decision(
            "101",
            Outcome.REJECTED,
            email="Ana.Lopez@Example.COM",
            inputs={"city": "Zürich", "budget": "30000", "jobtitle": None},
        ),
        decision(
            "102",
            Outcome.REJECTED,
            email="bo@example.org",
            inputs={"city": "Ørsted ΑΘΗΝΑ", "note": 'says "100%" of_it'},
            reasons=(Reason("timeline", "timeline: 400 days is over 180", code="RULE"),),
        ),
        decision(
            "1023",
            Outcome.REJECTED,
            email=None,
            inputs={"city": "Lyon", "budget": "x\x00y"},
            reasons=(Reason("need", "need: empty", code="RULE", fields=("need_text",)),),
        ),
        decision("104", Outcome.REJECTED, email="dee@example.net", inputs={"city": "Größe"}),
        decision("105", Outcome.CREATED, email="ana.lopez@example.com", inputs={"city": "Zürich"}),
    ]
    store.commit_page(STREAM, rows, Cursor(1, 1))
    return {
        r.decision.contact_id: r.id
        for r in store.rejects(RejectFilter(include_resolved=True, limit=100))
    }


def _found(store: StateStore, wanted: str) -> list[str]:
    query = RejectFilter(text=wanted, include_resolved=True, limit=100)
    found = [r.decision.contact_id for r in store.rejects(query)]
    assert store.count_rejects(query) == len(found)
    assert len(store.reject_ids(query)) == len(found)
    return found


#: (needle, contact ids found, newest first): the same on both backends, indexed or not.
CASES = [
    ("ana.lopez@example.com", ["101"]),  # an e-mail, in another case than stored
    ("EXAMPLE", ["104", "102", "101"]),  # part of e-mails; the synced lead is no reject
    ("over 180", ["102"]),  # words of a reason
    ("is not > 50000", ["104", "101"]),
    ("need_text", ["1023"]),  # a reason's field
    ("ZÜRICH", ["101"]),  # a HubSpot value with non-ASCII text, any case
    ("αθηνα", ["102"]),
    ("ørsted", ["102"]),
    ("größe", ["104"]),
    ('"100%" of_', ["102"]),  # quotes and LIKE's wildcards are plain text
    ("10%", []),
    ("102", ["102"]),  # a contact id: exact, not part of another id
    ("x y", ["1023"]),  # a NUL in a value is a space to the search
    ("city", []),  # property names are not values
    ("zü", ["101"]),  # shorter than a trigram: read from every reject
    ("ö", ["104"]),
]


@pytest.mark.parametrize(("wanted", "expected"), CASES, ids=[c[0] for c in CASES])
def test_free_text_finds_the_same_rejects_on_each_backend(
    store: StateStore, wanted: str, expected: list[str]
) -> None:
    _seed(store)
    assert _found(store, wanted) == expected


def test_the_index_follows_every_write(store_url: str) -> None:
    """New stores have the index; it holds exactly the rejects' texts, also after rows go."""
    store = open_store(store_url, create=True)
    try:
        ids = _seed(store)
    finally:
        store.close()
    engine = create_engine(_engine_url(store_url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                count = f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH '\"zürich\"'"
                assert conn.execute(text(count)).scalar_one() == 1
                conn.execute(text("DELETE FROM decisions WHERE id = :id"), {"id": ids["101"]})
                assert conn.execute(text(count)).scalar_one() == 0
                # The external-content index agrees with the table, row for row.
                conn.execute(
                    text(
                        f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)"
                    )
                )
            else:
                indexes = conn.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
                    {"name": TRIGRAM_INDEX},
                ).scalar_one()
                assert "gin_trgm_ops" in indexes
                conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = "\n".join(
                    conn.execute(
                        text(
                            "EXPLAIN SELECT id FROM decisions WHERE search_text LIKE"
                            " '%zürich%' ESCAPE '/'"
                        )
                    ).scalars()
                )
                assert TRIGRAM_INDEX in plan
    finally:
        engine.dispose()


def test_searchable_text_is_one_normalised_lower_case_text() -> None:
    """NFC and lower case; e-mail, reason strings and values; no property names."""
    stored = searchable_text(
        "json:" + '"A\\u0000B@X.COM"',
        '[{"code":"RULE","criterion":"budget","fields":["budget"],"message":"Too LOW"}]',
        '{"city":"Zu\\u0308rich","n":3,"ok":true,"none":null}',
    )
    parts = ["a b@x.com", "rule", "budget", "budget", "too low", "zürich", "3", "true"]
    assert stored.split("\n") == parts
    assert normalise("\ud800X") == "?x"  # no UTF-8 form: replaced, never refused


@pytest.fixture
def store_without_index(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, StateStore]]:
    """A new store whose backend could not make the search index, opened as crmbridge does."""
    database = None
    if store_url.startswith("sqlite"):
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 33, 0))  # before trigram
        url = store_url
    else:
        url, database = _unprivileged_database(store_url)
    with capture_logs() as logs:
        store = open_store(url, create=True)
    try:
        events = [entry["event"] for entry in logs]
        assert "search_index_unavailable" in events  # the migration said why
        assert "search_index_missing" in events  # the store says search reads every reject
        yield url, store
    finally:
        store.close()
        if database is not None:
            admin = create_engine(_engine_url(store_url), isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
            finally:
                admin.dispose()


def _unprivileged_database(store_url: str) -> tuple[str, str]:
    """A database a role without the CREATE privilege on it may use (no extension for it)."""
    role, name = f"viewer_{uuid.uuid4().hex[:8]}", f"crmbridge_noext_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_engine_url(store_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC'))
        url = make_url(_engine_url(store_url)).set(database=name)
        owner = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with owner.connect() as conn:
                conn.execute(text(f'GRANT ALL ON SCHEMA public TO "{role}"'))
        finally:
            owner.dispose()
    finally:
        admin.dispose()
    url = make_url(store_url).set(database=name, username=role)
    return url.render_as_string(hide_password=False), name


def test_without_the_index_search_reads_every_reject_with_the_same_hits(
    store_without_index: tuple[str, StateStore],
) -> None:
    url, store = store_without_index
    engine = create_engine(_engine_url(url))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                names = "SELECT count(*) FROM sqlite_master WHERE name LIKE 'decisions_search%'"
            else:
                names = "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'decisions_search%'"
            assert conn.execute(text(names)).scalar_one() == 0
    finally:
        engine.dispose()
    _seed(store)
    for wanted, expected in CASES:
        assert _found(store, wanted) == expected, wanted


def test_revision_0007_fills_the_search_text_of_an_existing_store(store_url: str) -> None:
    """A store at 0006 with rejects (non-ASCII stored as JSON escapes) and a synced lead: after
    the upgrade its rejects are found by e-mail, reason and value; the synced lead has no text."""
    engine = create_engine(_engine_url(store_url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # the module's database: start empty
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            alembic_command.upgrade(migrate._config(conn), "0006")
            conn.execute(
                text(
                    "INSERT INTO store_meta VALUES ('default', 'id-1', '2026-11-01T00:00:00.000Z',"
                    " :url)"
                ),
                {"url": store_url},
            )
            rows = [
                (1, "rejected", "Ana@Example.com", '{"city":"Z\\u00fcrich"}'),
                (2, "rejected", None, '{"city":"Lyon"}'),
                (3, "created", "zed@example.com", '{"city":"Z\\u00fcrich"}'),
            ]
            for row_id, outcome, email, inputs in rows:
                conn.execute(
                    text(
                        "INSERT INTO decisions (id, pipeline, contact_id, modified_at_ms, outcome,"
                        " stage, rule_set_version, qualified, reasons_json, criteria_json,"
                        " inputs_json, email, decided_at, review_status) VALUES (:id,"
                        " 'default', :contact, 1, :outcome, NULL, 'v1', false, :reasons, '[]',"
                        " :inputs, :email, '2026-11-01T00:00:00.000Z', :status)"
                    ),
                    {
                        "id": row_id,
                        "contact": str(row_id),
                        "outcome": outcome,
                        "reasons": '[{"code":"RULE","criterion":"budget","fields":[],'
                        '"message":"budget: 1 is not > 5"}]',
                        "inputs": inputs,
                        "email": email,
                        "status": "open" if outcome == "rejected" else None,
                    },
                )
    finally:
        engine.dispose()
    store = open_store(store_url)
    try:
        assert _found(store, "ZÜRICH") == ["1"]
        assert _found(store, "ana@example") == ["1"]
        assert _found(store, "1 is not > 5") == ["2", "1"]
        assert _found(store, "lyon") == ["2"]
    finally:
        store.close()
    engine = create_engine(_engine_url(store_url))
    try:
        with engine.connect() as conn:
            texts = dict(conn.execute(text("SELECT id, search_text FROM decisions")).all())
    finally:
        engine.dispose()
    assert texts[3] is None
    assert texts[1] == "ana@example.com\nrule\nbudget\nbudget: 1 is not > 5\nzürich"


def test_the_index_answers_needles_of_a_trigram_or_more(store: StateStore) -> None:
    """With the index, a needle of 3+ characters is an index lookup; a shorter one a scan."""
    from crmbridge.state.search import text_condition  # noqa: PLC0415

    dialect = "sqlite" if "sqlite" in repr(store.identity().url) else "postgresql"
    long_, short = (
        str(text_condition(n, dialect=dialect, indexed=True).compile()) for n in ("zür", "zü")
    )
    if dialect == "sqlite":
        assert f"FROM {FTS_TABLE}" in long_
        assert "MATCH" in long_
        assert "instr" in short
        assert FTS_TABLE not in short
    else:
        assert "LIKE" in long_
