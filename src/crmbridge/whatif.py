"""What-if: replay a proposed rule set (and map) over the latest stored decision of every contact.

From the state store alone: each contact's latest decision holds the HubSpot values it read,
the ledger holds what was last done for it, and the store keeps the last Salesforce describe,
so :func:`replay` judges every contact again through :func:`crmbridge.judgement.judge` with no
API call and writes nothing. It reads the store a chunk at a time (memory stays flat however
many contacts there are).

A lead *flips* when the proposed configuration lets it through where the stored decision held
it back (newly qualified), or the other way round (newly rejected). Passing means passing the
gate (the rules and the map): a lead Salesforce itself refused had passed it. A contact whose
stored decision never read a property the proposal reads is not replayed, and the property is
named: judging it without the value would be a guess. ``sync --dry-run`` is the live
counterpart (it pulls from HubSpot).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from crmbridge.configuration import Configuration
from crmbridge.judgement import PASSING, judge, passes_gate
from crmbridge.model import Decision, ObjectSchema, SourceContact
from crmbridge.ports import LatestDecision

__all__ = ["NEWLY_QUALIFIED", "NEWLY_REJECTED", "Flip", "WhatIf", "replay"]

NEWLY_QUALIFIED = "newly qualified"
NEWLY_REJECTED = "newly rejected"
#: How a lead without a lead-source value (or stored before it was pulled) is grouped.
NO_SOURCE = "(none)"
NOT_PULLED = "(not pulled)"
NO_STAGE = "(none)"


@dataclass(frozen=True)
class Flip:
    """One contact whose verdict the proposal changes: its stored and its replayed decision."""

    direction: str
    lead_source: str
    stage: str
    old: Decision
    new: Decision


@dataclass
class WhatIf:
    """What the proposal would change, counted every way the admin and sales ask for."""

    rule_set: str
    version: str
    stored: int = 0
    replayed: int = 0
    #: Property → how many stored decisions never read it (those contacts are not replayed).
    not_replayable: Counter[str] = field(default_factory=Counter)
    #: Property → who in the proposal reads it (``criterion "budget"``, ``field Title``).
    readers: dict[str, list[str]] = field(default_factory=dict)
    newly_qualified: int = 0
    newly_rejected: int = 0
    #: Criterion → {direction: count}: newly rejected by what now fails, newly qualified by
    #: what failed before.
    by_criterion: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    #: Lead source → {"replayed" | direction: count}.
    by_lead_source: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    #: Stage (the proposal's) → {"replayed" | direction: count}.
    by_stage: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    flips: list[Flip] = field(default_factory=list)
    lead_source_property: str = ""
    describe_fetched_at: str | None = None

    @property
    def unchanged(self) -> int:
        """Replayed contacts whose verdict stays as stored."""
        return self.replayed - self.newly_qualified - self.newly_rejected


def replay(
    chunks: Iterable[list[LatestDecision]],
    config: Configuration,
    schema: ObjectSchema,
    *,
    describe_fetched_at: str | None = None,
) -> WhatIf:
    """Judge every contact of ``chunks`` (``StateStore.latest_decisions()``) under ``config``
    with the stored describe ``schema``, and count what flips. Pure but for its input."""
    result = WhatIf(
        rule_set=config.rules.name,
        version=config.rules.version,
        readers=config.property_readers(),
        lead_source_property=config.mapping.lead_source,
        describe_fetched_at=describe_fetched_at,
    )
    needed = config.judged_properties
    source_property = config.mapping.lead_source
    for chunk in chunks:
        for latest in chunk:
            old = latest.decision
            result.stored += 1
            missing = needed.difference(old.inputs)
            if missing:
                result.not_replayable.update(missing)
                continue
            contact = SourceContact(old.contact_id, old.inputs, old.modified_at_ms)
            new = judge(contact, config, schema, latest.ledger)
            _count(result, old, new, source_property)
    return result


def _count(result: WhatIf, old: Decision, new: Decision, source_property: str) -> None:
    result.replayed += 1
    source = _lead_source(old, source_property)
    stage = (new.transition.wanted if new.transition else None) or NO_STAGE
    result.by_lead_source[source]["replayed"] += 1
    result.by_stage[stage]["replayed"] += 1
    was, now = passes_gate(old), new.outcome in PASSING
    if was == now:
        return
    direction = NEWLY_QUALIFIED if now else NEWLY_REJECTED
    if now:
        result.newly_qualified += 1
        criteria = {r.criterion for r in old.reasons}
    else:
        result.newly_rejected += 1
        criteria = {r.criterion for r in new.reasons}
    for criterion in criteria:
        result.by_criterion[criterion][direction] += 1
    result.by_lead_source[source][direction] += 1
    result.by_stage[stage][direction] += 1
    result.flips.append(Flip(direction, source, stage, old, new))


def _lead_source(decision: Decision, prop: str) -> str:
    if prop not in decision.inputs:
        return NOT_PULLED
    return (decision.inputs[prop] or "").strip() or NO_SOURCE
