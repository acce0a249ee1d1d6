"""The state store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Every table is keyed by a pipeline name, so several pipelines share one database; a store is
opened for one pipeline. The migrations under ``migrations/versions`` build exactly this schema
(a test compares them); change both together.

Text columns are ``StoredText``: any Python string round-trips exactly on both backends, even
one PostgreSQL's ``text`` cannot hold (NUL) or UTF-8 cannot encode (a lone surrogate). The
columns ``state.codec`` writes (the ``*_json`` columns and ``email``) are plain ``Text``: the
codec already makes them safe text.
"""

from __future__ import annotations

import json

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
    false,
)

#: Marks a stored string that was escaped. A Unicode noncharacter: no real text starts with it.
_ESCAPED = "\ufdd0"


def store_text(value: str) -> str:
    """``value`` as a string every backend stores: unchanged unless it holds NUL, a lone
    surrogate or the escape mark, then the mark followed by its ASCII JSON form."""
    if "\x00" in value:
        return _ESCAPED + json.dumps(value)
    if value.isascii() or (_ESCAPED not in value and _encodable(value)):
        return value
    return _ESCAPED + json.dumps(value)


def load_text(stored: str) -> str:
    """The inverse of ``store_text``."""
    if stored.startswith(_ESCAPED):
        return str(json.loads(stored[len(_ESCAPED) :]))
    return stored


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StoredText(TypeDecorator[str]):
    """Text that round-trips any Python string (see ``store_text``)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        del dialect
        return None if value is None else store_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        del dialect
        return None if value is None else load_text(value)


#: Row ids: 64-bit on PostgreSQL; SQLite's INTEGER PRIMARY KEY is its 64-bit rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

store_meta = Table(
    "store_meta",
    metadata,
    Column("pipeline", StoredText(), primary_key=True),
    Column("store_id", Text(), nullable=False),
    Column("created_at", Text(), nullable=False),
    Column("created_url", StoredText(), nullable=False),
)

cursors = Table(
    "cursors",
    metadata,
    Column("pipeline", StoredText(), nullable=False),
    Column("stream", StoredText(), nullable=False),
    Column("modified_at_ms", BigInteger(), nullable=False),
    Column("last_id", BigInteger(), nullable=False),
    Column("updated_at", Text(), nullable=False),
    PrimaryKeyConstraint("pipeline", "stream", name="cursors_pkey"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("pipeline", StoredText(), nullable=False),
    Column("contact_id", StoredText(), nullable=False),
    Column("status", Text(), nullable=False),
    Column("modified_at_ms", BigInteger(), nullable=False),
    Column("payload_hash", Text()),
    Column("salesforce_id", StoredText()),
    Column("rule_set_version", StoredText()),
    Column("updated_at", Text(), nullable=False),
    Column("fingerprint", Text()),
    Column("lead_stage", StoredText()),
    PrimaryKeyConstraint("pipeline", "contact_id", name="ledger_pkey"),
    Index("ledger_status", "pipeline", "status", "contact_id"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("pipeline", StoredText(), nullable=False),
    Column("contact_id", StoredText(), nullable=False),
    Column("modified_at_ms", BigInteger(), nullable=False),
    Column("email", Text()),
    Column("outcome", Text(), nullable=False),
    Column("stage", Text()),
    Column("rule_set_version", StoredText(), nullable=False),
    Column("qualified", Boolean(), nullable=False),
    Column("reasons_json", Text(), nullable=False),
    Column("criteria_json", Text(), nullable=False),
    Column("inputs_json", Text(), nullable=False),
    Column("payload_json", Text()),
    Column("payload_hash", Text()),
    Column("salesforce_id", StoredText()),
    Column("decided_at", Text(), nullable=False),
    Column("resolved_at", Text()),
    Column("resolution", Text()),
    Column("tier", StoredText()),
    Column("score", BigInteger()),
    Column("lead_stage", StoredText()),
    Column("transition_json", Text()),
    Column("flags_json", Text()),
    Column("flagged", Boolean(), nullable=False, server_default=false()),
    Column("lead_source", StoredText()),
    Column("exception_json", Text()),
    # A reject's review: its status (open, escalated, excepted, dismissed, resolved; NULL for
    # other outcomes), to whom it is escalated, since when it has its status, and whether a
    # replay marked it to be judged again on the next pass.
    Column("review_status", Text()),
    Column("assignee", StoredText()),
    Column("status_changed_at", Text()),
    Column("requeued", Boolean(), nullable=False, server_default=false()),
    # A reject's e-mail, reasons and HubSpot values as one lower-cased text for the free-text
    # search (``state.search``; NULL for other outcomes). Its index is the backend's own (an
    # FTS5 table on SQLite, a pg_trgm GIN index on PostgreSQL), made by revision 0007.
    Column("search_text", Text()),
    # The reject log, newest first: open rejects, every reject, by rule-set version.
    Index("decisions_open_rejects", "pipeline", "outcome", "resolved_at", "id"),
    Index("decisions_rejects", "pipeline", "outcome", "id"),
    Index("decisions_rule_set_version", "pipeline", "rule_set_version", "id"),
    Index("decisions_contact", "pipeline", "contact_id", "id"),
    # Leads synced with flags (values a reviewer should fix), newest first.
    Index("decisions_flagged", "pipeline", "flagged", "id"),
    # The reviewers' queue and its filters, newest first.
    Index("decisions_review", "pipeline", "outcome", "review_status", "id"),
    Index("decisions_lead_source", "pipeline", "lead_source", "id"),
    Index("decisions_tier", "pipeline", "tier", "id"),
    Index("decisions_requeued", "pipeline", "requeued", "id"),
    sqlite_autoincrement=True,  # a reject id is never reused: reviewers quote them
)

#: One row per reason of a decision, so "rejects failing budget" is an indexed query.
reasons = Table(
    "reasons",
    metadata,
    Column("decision_id", RowId, nullable=False),
    Column("position", Integer(), nullable=False),
    Column("pipeline", StoredText(), nullable=False),
    Column("criterion", StoredText(), nullable=False),
    Column("code", StoredText()),
    PrimaryKeyConstraint("decision_id", "position", name="reasons_pkey"),
    ForeignKeyConstraint(
        ["decision_id"], ["decisions.id"], name="reasons_decision_fkey", ondelete="CASCADE"
    ),
    Index("reasons_criterion", "pipeline", "criterion", "decision_id"),
    Index("reasons_code", "pipeline", "code", "decision_id"),
)

parked = Table(
    "parked",
    metadata,
    Column("pipeline", StoredText(), nullable=False),
    Column("contact_id", StoredText(), nullable=False),
    Column("decision_id", RowId, nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_error", StoredText(), nullable=False),
    Column("parked_at", Text(), nullable=False),
    PrimaryKeyConstraint("pipeline", "contact_id", name="parked_pkey"),
    ForeignKeyConstraint(["decision_id"], ["decisions.id"], name="parked_decision_fkey"),
    Index("parked_order", "pipeline", "parked_at", "contact_id"),
)

#: The last Salesforce describe a pass fetched, per object: reports map without an API call.
salesforce_schemas = Table(
    "salesforce_schemas",
    metadata,
    Column("pipeline", StoredText(), nullable=False),
    Column("object_name", StoredText(), nullable=False),
    Column("describe_json", Text(), nullable=False),
    Column("fetched_at", Text(), nullable=False),
    PrimaryKeyConstraint("pipeline", "object_name", name="salesforce_schemas_pkey"),
)

#: Every change of a reject's review status: who, when, from → to, the note.
review_audit = Table(
    "review_audit",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("pipeline", StoredText(), nullable=False),
    Column("decision_id", RowId, nullable=False),
    Column("at", Text(), nullable=False),
    Column("actor", StoredText(), nullable=False),
    Column("action", Text(), nullable=False),
    Column("from_status", Text(), nullable=False),
    Column("to_status", Text(), nullable=False),
    Column("assignee", StoredText()),
    Column("note", StoredText()),
    ForeignKeyConstraint(
        ["decision_id"], ["decisions.id"], name="review_audit_decision_fkey", ondelete="CASCADE"
    ),
    Index("review_audit_decision", "pipeline", "decision_id", "id"),
    Index("review_audit_at", "pipeline", "at"),
    sqlite_autoincrement=True,
)

#: The console's users. Not per pipeline: one console serves a deployment's reviewers.
users = Table(
    "users",
    metadata,
    Column("name", StoredText(), primary_key=True),
    Column("role", Text(), nullable=False),
    Column("password_hash", Text(), nullable=False),
    Column("created_at", Text(), nullable=False),
    Column("updated_at", Text(), nullable=False),
)

#: One row per pass of a pipeline, newest last (``crmbridge status``); the newest are kept.
pass_results = Table(
    "pass_results",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("pipeline", StoredText(), nullable=False),
    Column("started_at", Text(), nullable=False),
    Column("finished_at", Text(), nullable=False),
    Column("duration_s", Float(), nullable=False),
    Column("result", Text(), nullable=False),
    Column("error", StoredText()),
    Column("counts_json", Text(), nullable=False),
    Column("reasons_json", Text(), nullable=False),
    Column("hubspot_calls", BigInteger(), nullable=False),
    Column("salesforce_calls", BigInteger(), nullable=False),
    Column("cursor_ms", BigInteger(), nullable=False),
    Column("headroom_json", Text(), nullable=False),
    Index("pass_results_newest", "pipeline", "id"),
    sqlite_autoincrement=True,
)

#: Who may write each pipeline (``crmbridge.lease``): holder, fencing token, expiry.
leases = Table(
    "leases",
    metadata,
    Column("pipeline", StoredText(), nullable=False),
    Column("holder", StoredText(), nullable=False),
    Column("host", StoredText(), nullable=False),
    Column("pid", BigInteger(), nullable=False),
    Column("token", BigInteger(), nullable=False),
    Column("acquired_at", Float(precision=53), nullable=False),
    Column("renewed_at", Float(precision=53), nullable=False),
    Column("expires_at", Float(precision=53), nullable=False),
    PrimaryKeyConstraint("pipeline", name="leases_pkey"),
)

#: Leads pushed whose page is not committed yet, with Salesforce's answer once it came.
push_journal = Table(
    "push_journal",
    metadata,
    Column("pipeline", StoredText(), nullable=False),
    Column("contact_id", StoredText(), nullable=False),
    Column("payload_hash", Text(), nullable=False),
    Column("had_lead", Boolean(), nullable=False),
    Column("token", BigInteger(), nullable=False),
    Column("recorded_at", Float(precision=53), nullable=False),
    Column("salesforce_id", StoredText()),
    Column("created", Boolean()),
    PrimaryKeyConstraint("pipeline", "contact_id", name="push_journal_pkey"),
)

#: Tables holding a pipeline's data (the meta row aside), children first.
PIPELINE_TABLES = (
    review_audit,
    reasons,
    parked,
    ledger,
    cursors,
    decisions,
    salesforce_schemas,
    pass_results,
)

#: A decision's columns as reads want them: the search text is only for the search's index.
DECISION_READ = tuple(column for column in decisions.c if column.name != "search_text")
