"""Decisions to and from columns: shared by every state store (SQLite now, PostgreSQL next).

A decision keeps the exact HubSpot values it read, and those can hold any Python ``str``: lone
UTF-16 surrogates (no UTF-8 form: SQLite's driver refuses them) and NUL (PostgreSQL text refuses
it, SQLite's text functions stop at it). So every column this module writes is safe text:

* JSON columns (``*_json``) are ASCII-only JSON (:func:`dumps`): every other character is a
  ``\\uXXXX`` escape, and ``json.loads`` gives back the exact string. Store them as text (or
  ``json``), not PostgreSQL ``jsonb``, which refuses ``\\u0000`` and lone surrogate escapes.
* Plain text columns holding a HubSpot value (``email``) go through :func:`encode_text`: text
  that is already safe is stored as it is; anything else is stored as ``json:`` + ASCII JSON,
  which :func:`decode_text` reverses.

Exact means exact for every string JSON can produce (what HubSpot's answers decode to): a
high and a low surrogate built side by side by hand come back joined into their character,
as ``json.loads`` joins every escaped pair.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from crmbridge.model import (
    CriterionResult,
    Decision,
    Flag,
    MoveVerdict,
    Outcome,
    Reason,
    RejectStage,
    StageMove,
)


class Row(Protocol):
    """A database row readable by column name (``sqlite3.Row``, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def dumps(value: Any) -> str:
    """Canonical JSON for a column: sorted keys, no spaces, ASCII only (any ``str`` fits)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


#: Marks a plain text column value stored as JSON because it was not safe text.
ENCODED_PREFIX = "json:"


def encode_text(value: str | None) -> str | None:
    """``value`` as safe column text: unchanged when it has a UTF-8 form, no NUL and does not
    start with :data:`ENCODED_PREFIX`; otherwise that prefix and ASCII JSON. Never raises."""
    if value is None:
        return None
    safe = "\x00" not in value and not value.startswith(ENCODED_PREFIX)
    if safe and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            safe = False
    return value if safe else ENCODED_PREFIX + json.dumps(value, ensure_ascii=True)


def decode_text(stored: str | None) -> str | None:
    """The exact string :func:`encode_text` was given (rows written before it are plain text)."""
    if stored is None or not stored.startswith(ENCODED_PREFIX):
        return stored
    try:
        value = json.loads(stored[len(ENCODED_PREFIX) :])
    except json.JSONDecodeError:
        return stored
    return value if isinstance(value, str) else stored


#: Stage verdicts that move nothing: left out of fingerprints (a lead judged again after the
#: upgrade that added stages is still the same verdict).
_NO_MOVE = frozenset({MoveVerdict.FIRST, MoveVerdict.SAME})

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
    # Only when set, so decisions without them keep the fingerprints stored before.
    if decision.tier is not None:
        judged["tier"] = decision.tier
    if decision.transition is not None and decision.transition.verdict not in _NO_MOVE:
        judged["transition"] = decision.transition.to_json()
    if decision.flags:
        judged["flags"] = [f.to_json() for f in decision.flags]
    # Not dumps(): UTF-8 as is keeps the fingerprints earlier versions stored (an unchanged
    # verdict adds no row after an upgrade); "surrogatepass" takes a lone surrogate too.
    text = json.dumps(judged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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
        "email": encode_text(decision.email),
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
        "tier": decision.tier,
        "score": decision.score,
        "lead_stage": decision.lead_stage,
        "transition_json": dumps(decision.transition.to_json()) if decision.transition else None,
        "flags_json": dumps([f.to_json() for f in decision.flags]) if decision.flags else None,
        "flagged": bool(decision.flags) and decision.outcome in _SETTLED,
        "lead_source": decision.lead_source,
        "exception_json": dumps(dict(decision.exception)) if decision.exception else None,
        "review_status": "open" if decision.outcome is Outcome.REJECTED else None,
    }


#: Outcomes after which the lead is in Salesforce (a flagged one is listed for a reviewer).
_SETTLED = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})


def decision_from_row(row: Row) -> Decision:
    """Rebuild a Decision from the columns ``decision_columns`` wrote."""
    payload = row["payload_json"]
    transition = row["transition_json"]
    flags = row["flags_json"]
    score = row["score"]
    exception = row["exception_json"]
    return Decision(
        contact_id=row["contact_id"],
        modified_at_ms=int(row["modified_at_ms"]),
        email=decode_text(row["email"]),
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
        tier=row["tier"],
        score=int(score) if score is not None else None,
        lead_stage=row["lead_stage"],
        transition=StageMove.from_json(json.loads(transition)) if transition else None,
        flags=tuple(Flag.from_json(f) for f in json.loads(flags)) if flags else (),
        lead_source=row["lead_source"],
        exception=json.loads(exception) if exception else None,
    )
