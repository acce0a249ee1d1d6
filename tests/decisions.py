"""Decisions for state-store and ledger tests: one per outcome, overridable field by field."""

from __future__ import annotations

from typing import Any

from crmbridge.model import Decision, Outcome, Reason, RejectStage

SALESFORCE_ID = "00Q000000000001AAA"


def decision(contact_id: str, outcome: Outcome, **changes: Any) -> Decision:
    """A plausible decision about ``contact_id`` with ``outcome``; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "contact_id": contact_id,
        "modified_at_ms": 1_000,
        "email": f"{contact_id}@example.com",
        "outcome": outcome,
        "rule_set_version": "v1",
        "qualified": outcome is not Outcome.REJECTED,
        "inputs": {"budget": "30000"},
    }
    if outcome is Outcome.REJECTED:
        fields["stage"] = RejectStage.QUALIFICATION
        fields["reasons"] = (Reason("budget", "budget: 30000 is not > 50000", code="RULE"),)
    if outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.PARKED):
        fields["payload"] = {"LastName": "Ng"}
        fields["payload_hash"] = "h1"
    if outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED):
        fields["salesforce_id"] = SALESFORCE_ID
    if outcome is Outcome.PARKED:
        fields["reasons"] = (
            Reason("salesforce.UNABLE_TO_LOCK_ROW", "locked", code="UNABLE_TO_LOCK_ROW"),
        )
    fields.update(changes)
    return Decision(**fields)
