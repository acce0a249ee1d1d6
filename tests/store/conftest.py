"""State-store fixtures: every port test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``CRMBRIDGE_TEST_POSTGRES_URL`` (``scripts/test.sh`` starts a throwaway
server when it is unset). Without it the PostgreSQL tests fail: they are never skipped. Each
test module gets a database of its own, emptied between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from crmbridge.ports import StateStore
from crmbridge.state import open_store

POSTGRES_URL_VARIABLE = "CRMBRIDGE_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def _driver_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL server whose user may create databases."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.fail(
            f"{POSTGRES_URL_VARIABLE} is not set: run the tests with scripts/test.sh (it starts "
            "a throwaway PostgreSQL) or point the variable at a server"
        )
    return url


@pytest.fixture(scope="module")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A new database for this test module, dropped afterwards."""
    name = f"crmbridge_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_driver_url(postgres_server), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def empty_postgres(url: str) -> None:
    """Remove every row of every crmbridge table (the schema stays: migrations ran once)."""
    engine: Engine = create_engine(_driver_url(url))
    try:
        with engine.begin() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            if tables:
                names = ", ".join(f'"{t}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty place for a state store, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_database")
    empty_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    """A new state store (as `crmbridge state init` makes it) on each backend in turn."""
    opened = open_store(store_url, create=True)
    try:
        yield opened
    finally:
        opened.close()
