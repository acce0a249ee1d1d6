"""SQLite state store: cursor, ledger, reject log and parked leads, written atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.model import Cursor, Decision, Outcome, Reason, RejectStage
from crmbridge.ports import RejectFilter
from crmbridge.state import open_store, sqlite_path
from crmbridge.state.sqlite import MIGRATIONS, SQLiteStateStore

STREAM = "hubspot.contacts"


def decision(contact_id: str, outcome: Outcome, **kw: object) -> Decision:
    base: dict[str, object] = {
        "contact_id": contact_id,
        "modified_at_ms": 1_000,
        "email": f"{contact_id}@example.com",
        "outcome": outcome,
        "rule_set_version": "v1",
        "qualified": outcome is not Outcome.REJECTED,
        "inputs": {"budget": "30000"},
    }
    if outcome is Outcome.REJECTED:
        base["stage"] = RejectStage.QUALIFICATION
        base["reasons"] = (Reason("budget", "budget: 30000 is not > 50000", code="RULE"),)
    if outcome in (Outcome.CREATED, Outcome.UPDATED):
        base["payload"] = {"LastName": "Ng"}
        base["payload_hash"] = "h1"
        base["salesforce_id"] = "00Q000000000001AAA"
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStateStore:
    s = SQLiteStateStore(tmp_path / "state.db")
    yield s  # type: ignore[misc]
    s.close()


def test_cursor_starts_at_zero_and_persists(tmp_path: Path) -> None:
    """A new store has an empty cursor; a committed one survives reopening the file."""
    path = tmp_path / "state.db"
    first = SQLiteStateStore(path)
    assert first.get_cursor(STREAM) == Cursor()
    first.commit_page(STREAM, [], Cursor(5_000, 42))
    first.close()
    second = SQLiteStateStore(path)
    assert second.get_cursor(STREAM) == Cursor(5_000, 42)
    second.close()


def test_failed_commit_leaves_neither_outcomes_nor_cursor(store: SQLiteStateStore) -> None:
    """If writing a page fails half way, no decision and no cursor move are kept."""
    good = decision("1", Outcome.CREATED)
    broken = decision("2", Outcome.CREATED, inputs={"x": object()})  # not JSON-serialisable
    with pytest.raises(TypeError):
        store.commit_page(STREAM, [good, broken], Cursor(9_000, 2))
    assert store.get_cursor(STREAM) == Cursor()
    assert store.ledger(["1", "2"]) == {}


def test_ledger_keeps_salesforce_id_and_hash(store: SQLiteStateStore) -> None:
    """A synced decision records the Salesforce id and the payload hash for skip checks."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], Cursor(1_000, 1))
    entry = store.ledger(["1"])["1"]
    assert entry.status == "synced"
    assert entry.salesforce_id == "00Q000000000001AAA"
    assert entry.payload_hash == "h1"


def test_reject_after_sync_keeps_what_salesforce_holds(store: SQLiteStateStore) -> None:
    """A later reject does not forget the Salesforce id or the hash of the pushed payload."""
    store.commit_page(STREAM, [decision("1", Outcome.CREATED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED, modified_at_ms=2_000)], None)
    entry = store.ledger(["1"])["1"]
    assert entry.status == "rejected"
    assert entry.salesforce_id == "00Q000000000001AAA"
    assert entry.payload_hash == "h1"


def test_reject_log_lists_open_rejects_with_reasons(store: SQLiteStateStore) -> None:
    """Rejects are listed newest first with their reasons and rule-set version."""
    store.commit_page(
        STREAM, [decision("1", Outcome.REJECTED), decision("2", Outcome.CREATED)], None
    )
    records = store.rejects(RejectFilter())
    assert [r.decision.contact_id for r in records] == ["1"]
    record = records[0]
    assert record.decision.reasons[0].message == "budget: 30000 is not > 50000"
    assert record.decision.rule_set_version == "v1"
    assert store.reject(record.id) == record


def test_sync_resolves_earlier_rejects(store: SQLiteStateStore) -> None:
    """When a rejected contact later syncs, its open reject is resolved, not deleted."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.CREATED, modified_at_ms=2_000)], None)
    assert store.rejects(RejectFilter()) == []
    history = store.rejects(RejectFilter(include_resolved=True))
    assert len(history) == 1
    assert history[0].resolution == "synced later"
    assert history[0].resolved_at is not None


def test_new_reject_supersedes_the_old_one(store: SQLiteStateStore) -> None:
    """A contact rejected again on changed data has one open reject: the newest."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    changed = decision("1", Outcome.REJECTED, modified_at_ms=2_000, inputs={"budget": "20000"})
    store.commit_page(STREAM, [changed], None)
    open_rejects = store.rejects(RejectFilter())
    assert [r.decision.modified_at_ms for r in open_rejects] == [2_000]
    assert store.count_rejects(RejectFilter(include_resolved=True)) == 2


def test_reject_filters(store: SQLiteStateStore) -> None:
    """Rejects filter by criterion, stage, contact and rule-set version."""
    sf_reason = (
        Reason("salesforce.INVALID_EMAIL_ADDRESS", "Salesforce: bad", code="INVALID_EMAIL_ADDRESS"),
    )
    store.commit_page(
        STREAM,
        [
            decision("1", Outcome.REJECTED),
            decision("2", Outcome.REJECTED, stage=RejectStage.SALESFORCE, reasons=sf_reason),
            decision("3", Outcome.REJECTED, rule_set_version="v2"),
        ],
        None,
    )
    assert store.count_rejects(RejectFilter(criterion="budget")) == 2
    assert store.count_rejects(RejectFilter(stage="salesforce")) == 1
    assert store.count_rejects(RejectFilter(contact_id="3")) == 1
    assert store.count_rejects(RejectFilter(rule_set_version="v2")) == 1


def test_parked_leads_count_attempts_and_clear_on_success(store: SQLiteStateStore) -> None:
    """A parked lead is listed with its attempts until a later outcome clears it."""
    parked = decision(
        "1",
        Outcome.PARKED,
        payload={"LastName": "Ng"},
        reasons=(Reason("salesforce.UNABLE_TO_LOCK_ROW", "locked", code="UNABLE_TO_LOCK_ROW"),),
    )
    store.commit_page(STREAM, [parked], None)
    store.commit_page(STREAM, [parked], None)
    [lead] = store.parked(10)
    assert lead.attempts == 2
    assert lead.decision.payload == {"LastName": "Ng"}
    store.commit_page(STREAM, [decision("1", Outcome.UPDATED)], None)
    assert store.parked(10) == []


def test_state_url_forms() -> None:
    """Relative and absolute SQLite URLs resolve as the contract describes."""
    assert str(sqlite_path("sqlite:///crmbridge.db")) == "crmbridge.db"
    assert str(sqlite_path("sqlite:////var/lib/x.db")) == "/var/lib/x.db"


def test_unsupported_state_url_is_a_config_error() -> None:
    """An unknown scheme names the variable and the supported form."""
    with pytest.raises(ConfigError, match="CRMBRIDGE_STATE_URL"):
        open_store("mysql://x")


def test_identical_rejudgement_adds_no_row(store: SQLiteStateStore) -> None:
    """The same verdict on the same data (only lastmodifieddate moved) is stored once."""
    first = decision("1", Outcome.REJECTED, inputs={"budget": "30000", "lastmodifieddate": "a"})
    bumped = decision(
        "1",
        Outcome.REJECTED,
        modified_at_ms=9_000,
        inputs={"budget": "30000", "lastmodifieddate": "b"},
    )
    store.commit_page(STREAM, [first], None)
    store.commit_page(STREAM, [bumped], None)
    assert len(store.decisions_of("1")) == 1
    assert store.count_rejects(RejectFilter()) == 1
    assert store.ledger(["1"])["1"].modified_at_ms == 9_000


def test_new_rule_version_is_a_new_decision(store: SQLiteStateStore) -> None:
    """The same data judged under another rule-set version is stored as a new decision."""
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED)], None)
    store.commit_page(STREAM, [decision("1", Outcome.REJECTED, rule_set_version="v2")], None)
    assert [d.rule_set_version for d in store.decisions_of("1")] == ["v1", "v2"]


def test_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    """A store written by schema version 1 opens at the latest version with its data."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT INTO ledger VALUES ('7', 'synced', 5, 'h', '00Q000000000007AAA', 'v1', 'now')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    migrated = SQLiteStateStore(path)
    try:
        assert migrated.schema_version == len(MIGRATIONS)
        assert migrated.ledger(["7"])["7"].salesforce_id == "00Q000000000007AAA"
        migrated.commit_page(STREAM, [decision("7", Outcome.UPDATED)], Cursor(6, 7))
        assert migrated.get_cursor(STREAM) == Cursor(6, 7)
    finally:
        migrated.close()
