"""The judgement: one contact, the configuration, the describe and what was last done for the
contact in, one :class:`~crmbridge.model.Decision` out. Pure: no API call, no store.

The sync pipeline, ``sync --dry-run``, the what-if replay over stored decisions (and, later,
webhooks and the reviewer's replay) all judge through :func:`judge` / :func:`judge_contacts`,
so a rule means the same thing wherever it is applied. The answer is final except for a lead
to push: its outcome is ``TO_PUSH``, and only the push says created, updated, rejected (by
Salesforce) or parked.

Contracts:

- Never raises on contact data: an exception from the rules or the map (a bug) becomes this
  contact's reject, criterion ``internal``, message ``internal error: <type>: <message>``.
- An archived contact is ``SKIPPED``: it never deletes or changes sales data.
- Both verdicts at once: a reject lists every failed criterion and every mapping problem.
- A flagged value (``incomplete: placeholder``) is written when the lead is created, and left
  out once Salesforce has the Lead, so a rep's correction there is never overwritten by it.
- A lead whose payload hashes as the one last pushed is ``UNCHANGED`` (nothing to send).
- An exception (a reviewer approved the reject) lets the lead through despite the rules: the
  qualification's verdict is recorded (``qualified`` stays what the rules said) but does not
  hold the lead back, nor does a held stage move (the stage is kept, as when forbidden); the
  map must still build a Lead. The decision carries the exception (who approved it, when, the
  note, the rule-set version) and, when ``fields.yaml`` names an ``exception_field``, so does
  the Lead.
- The stage: the tier's stage, else the stage map's; the stage map's ``moves`` policy judges
  the move from the stage last pushed (``LedgerEntry.lead_stage``), and every decision
  records it. A forbidden regression keeps the stage (the Status is not sent); a held one
  rejects the lead for a reviewer (criterion ``stage``, code ``STAGE_REGRESSION``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from crmbridge.configuration import Configuration
from crmbridge.mapping.mapper import with_field
from crmbridge.mapping.policies import UpdatePolicy
from crmbridge.model import (
    Decision,
    FieldValue,
    FlagAction,
    MapResult,
    MoveVerdict,
    ObjectSchema,
    Outcome,
    Qualification,
    Reason,
    RejectStage,
    SourceContact,
    StageMove,
)
from crmbridge.ports import LedgerEntry
from crmbridge.redaction import redact
from crmbridge.text import clean_text

__all__ = [
    "INTERNAL",
    "INTERNAL_CODE",
    "PASSING",
    "STAGE_CODE",
    "internal_reason",
    "judge",
    "judge_contacts",
    "newest_versions",
    "passes_gate",
    "payload_hash",
]

#: The criterion (and ``code``) of a reject caused by an unexpected exception (a bug).
INTERNAL = "internal"
INTERNAL_CODE = "INTERNAL"
#: How much of an exception's message an internal-error reason keeps.
INTERNAL_MESSAGE_MAX_CHARS = 500
#: The criterion and code of a lead held back because its stage would move backwards.
STAGE_CRITERION = "stage"
STAGE_CODE = "STAGE_REGRESSION"

#: Outcomes of a lead that passed the gate (qualified and mapped) as a judgement gives them.
PASSING = frozenset({Outcome.TO_PUSH, Outcome.UNCHANGED})

log = structlog.get_logger(__name__)


def payload_hash(fields: Mapping[str, object]) -> str:
    """Stable hash of a mapped payload: unchanged leads are not pushed again. Never raises on
    text (``surrogatepass``: a lone surrogate still hashes; valid text hashes as it always did)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def internal_reason(exc: BaseException) -> Reason:
    """The reject reason for an unexpected exception: its type and message, cleaned, every
    registered secret masked, and capped.

    The message of an exception nobody planned for may quote anything in reach, a token or an
    ``Authorization`` header included, and this reason is stored and printed by ``rejects``:
    it is masked before the cut, so a secret cannot be cut in half and slip past the mask."""
    message = redact(clean_text(f"internal error: {type(exc).__name__}: {exc}"))
    if len(message) > INTERNAL_MESSAGE_MAX_CHARS:
        message = message[: INTERNAL_MESSAGE_MAX_CHARS - 1] + "…"
    return Reason(criterion=INTERNAL, message=message, code=INTERNAL_CODE)


def passes_gate(decision: Decision) -> bool:
    """True when ``decision`` let the lead through the rules and the map: it was pushed (or is
    to be), unchanged, parked, or refused by Salesforce itself rather than by crmbridge."""
    if decision.outcome is Outcome.REJECTED:
        return decision.stage is RejectStage.SALESFORCE
    return decision.outcome is not Outcome.SKIPPED


def newest_versions(contacts: Iterable[SourceContact]) -> dict[str, SourceContact]:
    """The newest version of each contact (a page may hold one contact twice), in first-seen
    order of their ids."""
    newest: dict[str, SourceContact] = {}
    for contact in contacts:
        seen = newest.get(contact.id)
        if seen is None or contact.modified_at_ms >= seen.modified_at_ms:
            newest[contact.id] = contact
    return newest


def judge_contacts(
    contacts: Iterable[SourceContact],
    config: Configuration,
    schema: ObjectSchema,
    ledger: Mapping[str, LedgerEntry],
) -> list[Decision]:
    """Judge given contacts (the newest version of each), one decision per contact id."""
    return [
        judge(contact, config, schema, ledger.get(contact.id))
        for contact in newest_versions(contacts).values()
    ]


def judge(
    contact: SourceContact,
    config: Configuration,
    schema: ObjectSchema,
    entry: LedgerEntry | None,
    *,
    exception: Mapping[str, str] | None = None,
) -> Decision:
    """The decision about ``contact`` before any push; with ``exception`` (a reviewer's
    approval), despite the rules. Never raises (see the module's contracts)."""
    # The decision's fields, filled as the judgement goes and made into a Decision once (the
    # replay judges 100,000 contacts: building it step by step with replace() shows).
    made: dict[str, Any] = {
        "contact_id": contact.id,
        "modified_at_ms": contact.modified_at_ms,
        "email": contact.get("email"),
        "outcome": Outcome.SKIPPED,
        "rule_set_version": config.rules.version,
        "qualified": False,
        "inputs": {name: contact.get(name) for name in sorted(contact.properties)},
        "lead_stage": entry.lead_stage if entry is not None else None,
        "lead_source": contact.properties.get(config.mapping.lead_source),
    }
    if exception is not None:
        made["exception"] = {**exception, "rule_set_version": config.rules.version}
    if contact.archived:
        return Decision(**made)  # archived in HubSpot: never changes sales data (trap 7)
    stage = RejectStage.QUALIFICATION
    try:
        qualification = config.rules.evaluate(contact)
        made["qualified"] = qualification.qualified
        made["criteria"] = qualification.results
        made["tier"] = qualification.tier
        made["score"] = qualification.score
        stage = RejectStage.MAPPING
        mapped = config.mapping.map_fields(contact, schema)
        _verdict(made, qualification, mapped, contact, config, schema, entry)
    except Exception as exc:  # one contact's bug must not stop the page
        log.exception("contact_internal_error", contact_id=contact.id, stage=stage.value)
        made.update(outcome=Outcome.REJECTED, stage=stage, reasons=(internal_reason(exc),))
    return Decision(**made)


def _verdict(  # noqa: PLR0917 - the judgement's inputs, passed along once
    made: dict[str, Any],
    qualification: Qualification,
    mapped: MapResult,
    contact: SourceContact,
    config: Configuration,
    schema: ObjectSchema,
    entry: LedgerEntry | None,
) -> None:
    """The verdict once the rules and the map have answered, into ``made``: the tier's fields
    and the stage added, then rejected, unchanged or to push."""
    result = mapped
    for name, value in qualification.fields.items():
        result = with_field(result, name, value)
    move, result = _stage(qualification, result, contact, config=config, schema=schema, entry=entry)
    made["transition"] = move
    made["flags"] = mapped.flags
    reasons = qualification.reasons + result.reasons
    excepted = made.get("exception")
    passes_rules = qualification.qualified or excepted is not None
    if excepted is not None:
        reasons = result.reasons  # the reviewer's exception overrides the rules' reasons
        result = _mark_exception(result, excepted, config, schema)
    held = move is not None and move.verdict is MoveVerdict.HELD and excepted is None
    if held and move is not None:
        reasons += (_held_reason(move),)
    if not passes_rules or result.lead is None or result.reasons or held:
        stage = RejectStage.QUALIFICATION if not passes_rules else RejectStage.MAPPING
        made.update(outcome=Outcome.REJECTED, stage=stage, reasons=reasons)
        return
    fields: dict[str, FieldValue] = dict(result.lead.fields)
    never = {k for k, p in config.mapping.update_policies.items() if p is UpdatePolicy.NEVER}
    digest = payload_hash({k: v for k, v in fields.items() if k not in never})
    if entry is not None and entry.salesforce_id:
        # A placeholder is written when the lead is created, never over what the Lead holds
        # later (a rep's correction): the hash above still covers it, so nothing re-pushes.
        for flag in mapped.flags:
            if flag.action is FlagAction.PLACEHOLDER:
                fields.pop(flag.field, None)
    made.update(payload=fields, payload_hash=digest)
    if move is not None:
        made["lead_stage"] = move.after
    if entry is not None and entry.status == "synced" and entry.payload_hash == digest:
        made.update(outcome=Outcome.UNCHANGED, salesforce_id=entry.salesforce_id)
    else:
        made["outcome"] = Outcome.TO_PUSH


def _stage(
    qualification: Qualification,
    result: MapResult,
    contact: SourceContact,
    *,
    config: Configuration,
    schema: ObjectSchema,
    entry: LedgerEntry | None,
) -> tuple[StageMove | None, MapResult]:
    """The stage move the decision makes, and the payload with the stage's value (unless the
    move is forbidden or held: then the lead keeps its stage)."""
    stage_map = config.mapping.stage_map
    if stage_map is None:
        return None, result
    wanted = qualification.stage or stage_map.stage_name_for(contact)
    if wanted is None:
        return None, result
    move = stage_map.move(entry.lead_stage if entry is not None else None, wanted)
    if move.verdict in (MoveVerdict.FORBIDDEN, MoveVerdict.HELD) or move.after is None:
        return move, result
    value = config.mapping.stage_value(move.after, schema)
    return move, with_field(result, stage_map.target, value)


#: The exception note's length when the field's own length is not known.
EXCEPTION_NOTE_MAX_CHARS = 255


def exception_note(exception: Mapping[str, str]) -> str:
    """The exception as one line of text (what the Salesforce field shows)."""
    who = exception.get("approved_by", "?")
    when = exception.get("approved_at", "")[:10]
    note = exception.get("note") or ""
    text = f"Exception approved by {who} on {when} (reject {exception.get('reject_id', '?')}, "
    text += f"rules {exception.get('rule_set_version', '?')})"
    return text + (f": {note}" if note else "")


def _mark_exception(
    result: MapResult, exception: Mapping[str, str], config: Configuration, schema: ObjectSchema
) -> MapResult:
    """``result`` with the exception note in ``exception_field`` (cut to the field's length)."""
    name = config.mapping.exception_field
    if name is None:
        return result
    spec = schema.field(name)
    limit = spec.length if spec is not None and spec.length else EXCEPTION_NOTE_MAX_CHARS
    text = clean_text(exception_note(exception))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return with_field(result, name, text)


def _held_reason(move: StageMove) -> Reason:
    return Reason(
        STAGE_CRITERION,
        f"stage: {move.before} → {move.wanted} would move the lead backwards; held for review "
        "(stages.yaml moves: regression: hold)",
        code=STAGE_CODE,
    )
