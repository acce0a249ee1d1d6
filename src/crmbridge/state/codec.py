"""Decisions to and from JSON columns: shared by every state store (SQLite now, PostgreSQL next)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from crmbridge.model import CriterionResult, Decision, Outcome, Reason, RejectStage


class Row(Protocol):
    """A database row readable by column name (``sqlite3.Row``, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: Inputs that change on every HubSpot write whatever changed: not part of what was judged.
VOLATILE_INPUTS = frozenset({"lastmodifieddate"})


def fingerprint(decision: Decision) -> str:
    """What makes two decisions the same verdict on the same data (the timestamp left out)."""
    judged = {
        "version": decision.rule_set_version,
        "outcome": decision.outcome.value,
        "stage": decision.stage.value if decision.stage else None,
        "reasons": [r.to_json() for r in decision.reasons],
        "inputs": {k: v for k, v in decision.inputs.items() if k not in VOLATILE_INPUTS},
        "payload": decision.payload_hash,
    }
    return hashlib.sha256(dumps(judged).encode("utf-8")).hexdigest()


def criterion_from_json(data: Mapping[str, Any]) -> CriterionResult:
    return CriterionResult(
        name=str(data["name"]),
        passed=bool(data["passed"]),
        reason=data.get("reason"),
        children=tuple(criterion_from_json(c) for c in data.get("children") or ()),
    )


def decision_columns(decision: Decision) -> dict[str, Any]:
    """The column values a store writes for one decision."""
    return {
        "contact_id": decision.contact_id,
        "modified_at_ms": decision.modified_at_ms,
        "email": decision.email,
        "outcome": decision.outcome.value,
        "stage": decision.stage.value if decision.stage else None,
        "rule_set_version": decision.rule_set_version,
        "qualified": 1 if decision.qualified else 0,
        "reasons_json": dumps([r.to_json() for r in decision.reasons]),
        "criteria_json": dumps([c.to_json() for c in decision.criteria]),
        "inputs_json": dumps(dict(decision.inputs)),
        "payload_json": dumps(dict(decision.payload)) if decision.payload is not None else None,
        "payload_hash": decision.payload_hash,
        "salesforce_id": decision.salesforce_id,
    }


def decision_from_row(row: Row) -> Decision:
    """Rebuild a Decision from the columns ``decision_columns`` wrote."""
    payload = row["payload_json"]
    return Decision(
        contact_id=row["contact_id"],
        modified_at_ms=int(row["modified_at_ms"]),
        email=row["email"],
        outcome=Outcome(row["outcome"]),
        rule_set_version=row["rule_set_version"],
        qualified=bool(row["qualified"]),
        inputs=json.loads(row["inputs_json"]),
        reasons=tuple(Reason.from_json(r) for r in json.loads(row["reasons_json"])),
        stage=RejectStage(row["stage"]) if row["stage"] else None,
        criteria=tuple(criterion_from_json(c) for c in json.loads(row["criteria_json"])),
        payload=json.loads(payload) if payload is not None else None,
        payload_hash=row["payload_hash"],
        salesforce_id=row["salesforce_id"],
    )
