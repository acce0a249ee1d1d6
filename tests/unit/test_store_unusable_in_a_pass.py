"""A state store failing during a pass: unusable stops the daemon; unavailable stops the pass."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from crmbridge.bootstrap import load_config
from crmbridge.daemon import run_loop
from crmbridge.errors import StateStoreError, StateStoreUnavailableError
from crmbridge.model import Cursor, Decision, SourceContact
from crmbridge.pipeline import SyncPipeline
from crmbridge.ports import StateStore
from crmbridge.state import open_store
from crmbridge.testing import FakeLeadSink, FakeLeadSource, reference_lead_schema

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


class DamagedDiskStore:
    """A real store whose commits fail with ``failure`` (a damaged file by default)."""

    def __init__(self, inner: StateStore, failure: Exception | None = None) -> None:
        self.inner = inner
        self.commits = 0
        self.failure = failure or StateStoreError(
            "/var/lib/crmbridge/crmbridge.db",
            "is corrupted (database disk image is malformed)",
            hint="restore it from a backup",
        )

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def commit_page(
        self, stream: str, decisions: Sequence[Decision], cursor: Cursor | None
    ) -> None:
        del stream, decisions, cursor
        self.commits += 1
        raise self.failure


def pipeline_on(store: DamagedDiskStore) -> tuple[SyncPipeline, FakeLeadSource]:
    config = load_config(MAPPINGS)
    contact = SourceContact("1001", {"email": "a@example.com", "lastname": "Ng"}, 1_000)
    source = FakeLeadSource([contact])
    pipeline = SyncPipeline(
        source=source,
        sink=FakeLeadSink(reference_lead_schema()),
        store=store,  # type: ignore[arg-type]
        mapping=config.mapping,
        rules=config.rules,
        clock=lambda: 1_800_000_000.0,
        sleep=lambda _: None,
    )
    return pipeline, source


def test_a_store_failing_mid_pass_ends_the_loop_with_its_error(tmp_path: Path) -> None:
    """The daemon loop neither swallows nor retries an unusable store: it raises at once."""
    store = DamagedDiskStore(open_store(f"sqlite:///{tmp_path / 'state.db'}", create=True))
    pipeline, source = pipeline_on(store)
    try:
        with pytest.raises(StateStoreError, match="corrupted"):
            run_loop(pipeline, poll_interval_s=0, stop=threading.Event())
    finally:
        store.inner.close()
    assert store.commits == 1
    assert source.calls == 1


def test_a_store_gone_away_mid_pass_stops_the_pass_early(tmp_path: Path) -> None:
    """An unavailable store ends the pass like an outage: stopped early, not fatal, no crash."""
    gone = StateStoreUnavailableError("postgresql://crm@db/crm", "connection lost")
    store = DamagedDiskStore(open_store(f"sqlite:///{tmp_path / 'state.db'}", create=True), gone)
    pipeline, _ = pipeline_on(store)
    try:
        summary = pipeline.run_pass()
    finally:
        store.inner.close()
    assert summary.stopped_early == (
        "StateStoreUnavailableError: state store: postgresql://crm@db/crm: connection lost"
    )
    assert not summary.credentials_refused
    assert store.inner.get_cursor("hubspot.contacts").modified_at_ms == 0
