"""What the benchmarks share: a throwaway PostgreSQL database for a run (``--postgres URL``,
on a server whose user may create databases), and printing and keeping a report."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """The URL of a new database on ``server``, dropped when the block ends."""
    name = f"crmbridge_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.rsplit("/", 1)[0] + "/" + name
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def publish(lines: list[str], results: Path, *, write: bool) -> None:
    """Print the report and, unless told not to, keep it as the latest results."""
    report = "\n".join(lines) + "\n"
    print(report)
    if write:
        results.write_text(report, encoding="utf-8")
