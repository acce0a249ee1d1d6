"""The pipeline's entry points for given contacts (webhooks, a reviewer's replay) and the
configuration swap between pages, with fake source and sink and a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmbridge.configuration import Configuration, load_configuration
from crmbridge.model import Cursor, Outcome
from crmbridge.pipeline import STREAM, SyncPipeline
from crmbridge.ports import Page
from crmbridge.rules import RuleSet
from crmbridge.state.sqlite import SQLiteStateStore
from crmbridge.testing import FakeLeadSink, FakeLeadSource, reference_lead_schema
from tests.unit.test_pipeline import NOW_S, contact

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture
def config() -> Configuration:
    return load_configuration(MAPPINGS)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStateStore]:
    opened = SQLiteStateStore(tmp_path / "state.db")
    yield opened
    opened.close()


def pipeline(
    config: Configuration, store: SQLiteStateStore, source: FakeLeadSource
) -> tuple[SyncPipeline, FakeLeadSink]:
    sink = FakeLeadSink(reference_lead_schema())
    made = SyncPipeline(source=source, sink=sink, store=store, config=config, clock=lambda: NOW_S)
    return made, sink


def test_given_contacts_are_synced_and_recorded_without_moving_the_cursor(
    config: Configuration, store: SQLiteStateStore
) -> None:
    """sync_contacts judges, pushes and commits given contacts: one decision each, the
    stream's cursor untouched, no HubSpot call."""
    source = FakeLeadSource()
    made, sink = pipeline(config, store, source)
    summary = made.sync_contacts([contact(1), contact(2, budget="10"), contact(1)])
    assert (summary.pulled, summary.created, summary.rejected) == (2, 1, 1)
    assert (summary.hubspot_calls, summary.salesforce_calls) == (0, 2)  # describe, upsert
    assert store.get_cursor(STREAM) == Cursor()
    assert [d.outcome for d in store.decisions_of("1001")] == [Outcome.CREATED]
    assert list(sink.leads) == ["1001"]


def test_judging_given_contacts_writes_and_pushes_nothing(
    config: Configuration, store: SQLiteStateStore
) -> None:
    """judge_contacts answers TO_PUSH for a lead to push, and records nothing."""
    made, sink = pipeline(config, store, FakeLeadSource())
    decisions = made.judge_contacts([contact(1), contact(2, jobtitle="Intern")])
    assert [d.outcome for d in decisions] == [Outcome.TO_PUSH, Outcome.REJECTED]
    assert sink.batches == []
    assert store.decisions_of("1001") == []
    assert store.latest_schema("Lead") is None  # not even the describe is kept


class SwappingSource(FakeLeadSource):
    """Yields pages; before the second, the pipeline is given another configuration."""

    def __init__(self, swap: threading.Event, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.swap = swap
        self.pipeline: SyncPipeline | None = None
        self.proposed: Configuration | None = None

    def pull(self, since: Cursor, until_ms: int, properties: frozenset[str]) -> Iterator[Page]:
        for number, page in enumerate(super().pull(since, until_ms, properties)):
            if number == 1 and self.pipeline is not None and self.proposed is not None:
                self.pipeline.use_config(self.proposed)
            yield page


def test_a_new_configuration_applies_from_the_next_page_never_within_one(
    config: Configuration, store: SQLiteStateStore
) -> None:
    """A swap between two pages: the first page is judged and pushed whole under the old
    rules, the second under the new; the push batch is cut at the swap."""
    source = SwappingSource(threading.Event(), [contact(i) for i in range(4)], page_size=2)
    made, sink = pipeline(config, store, source)
    rules = RuleSet(replace(config.rules.spec, version="next"), source="next")
    source.pipeline, source.proposed = made, replace(config, rules=rules)
    summary = made.run_pass()
    assert summary.created == 4
    versions = [store.decisions_of(str(1000 + i))[0].rule_set_version for i in range(4)]
    assert versions == [config.rules.version] * 2 + ["next"] * 2
    assert sink.batches == [2, 2]  # not one batch of 4 across the swap
