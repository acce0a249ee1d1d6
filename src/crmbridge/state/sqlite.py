"""A state store on one SQLite file, made when missing: for tests and tools that want a store
at a path without going through a state URL."""

from __future__ import annotations

from pathlib import Path

from crmbridge.state.store import DEFAULT_PIPELINE, SQLStateStore


class SQLiteStateStore(SQLStateStore):
    """``SQLStateStore`` on the SQLite file at ``path``, created (with its identity) if absent."""

    def __init__(self, path: Path | str, *, pipeline: str = DEFAULT_PIPELINE) -> None:
        super().__init__(f"sqlite:///{path}", pipeline=pipeline, create=True)
