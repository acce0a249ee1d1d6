"""`rejects replay`: judge the open rejects again under the current rules and map, from the
state store alone (the values each reject stored, the ledger, the last Salesforce describe):
which would now pass. With ``apply``, those are marked for the next pass, which judges them
again from the same values and syncs the ones that pass (an audit entry each).

Like the what-if (:mod:`crmbridge.whatif`), a reject whose stored values lack a property the
current configuration reads is not judged (the property is named): judging it without the
value would be a guess.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from crmbridge.configuration import Configuration
from crmbridge.judgement import PASSING, judge
from crmbridge.model import ObjectSchema, SourceContact
from crmbridge.ports import RejectFilter, RejectRecord, StateStore
from crmbridge.review import Action, ReviewChange, ReviewResult

__all__ = ["PAGE", "ReplayResult", "replay_rejects"]

#: Rejects read per query.
PAGE = 1000


@dataclass
class ReplayResult:
    """What a replay found: how many open rejects were judged, which would now pass."""

    rule_set: str
    version: str
    judged: int = 0
    #: Property → how many rejects never stored it (not judged).
    not_replayable: Counter[str] = field(default_factory=Counter)
    #: The rejects that would now pass, newest first, as stored.
    passing: list[RejectRecord] = field(default_factory=list)
    #: Criterion → how many of the passing rejects it had held back.
    by_criterion: Counter[str] = field(default_factory=Counter)
    applied: list[ReviewResult] = field(default_factory=list)


def replay_rejects(
    store: StateStore,
    config: Configuration,
    schema: ObjectSchema,
    *,
    query: RejectFilter | None = None,
    apply_as: str | None = None,
) -> ReplayResult:
    """Judge every reject ``query`` selects (default: the open queue) under ``config``; with
    ``apply_as`` (who is acting), mark those that would now pass for the next pass."""
    base = query or RejectFilter()
    result = ReplayResult(config.rules.name, config.rules.version)
    needed = config.judged_properties
    offset = 0
    while True:
        page = store.rejects(replace(base, limit=PAGE, offset=offset))
        if not page:
            break
        offset += len(page)
        ledger = store.ledger([r.decision.contact_id for r in page])
        for record in page:
            old = record.decision
            missing = needed.difference(old.inputs)
            if missing:
                result.not_replayable.update(missing)
                continue
            result.judged += 1
            contact = SourceContact(old.contact_id, old.inputs, old.modified_at_ms)
            new = judge(contact, config, schema, ledger.get(old.contact_id))
            if new.outcome in PASSING:
                result.passing.append(record)
                result.by_criterion.update({r.criterion for r in old.reasons})
    if apply_as is not None and result.passing:
        note = f"replay: passes {config.rules.name} {config.rules.version}"
        change = ReviewChange(Action.REPLAY, apply_as, note=note)
        result.applied = store.change_review([r.id for r in result.passing], change)
    return result
