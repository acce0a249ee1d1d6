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

:func:`replay_store` can share the work among worker processes, each reading and judging
ranges of contacts from the store on its own; the counts and the order of the flips are the
same as with one.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from crmbridge.configuration import Configuration
from crmbridge.judgement import PASSING, judge, passes_gate
from crmbridge.logs import configure_logging
from crmbridge.model import Decision, ObjectSchema, SourceContact
from crmbridge.ports import LatestDecision, StateStore
from crmbridge.state import open_store

__all__ = [
    "NEWLY_QUALIFIED",
    "NEWLY_REJECTED",
    "Flip",
    "StoreAddress",
    "WhatIf",
    "replay",
    "replay_store",
]

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


@dataclass(frozen=True)
class StoreAddress:
    """Where worker processes open the state store themselves (read-only) to share a replay."""

    url: str
    pipeline: str


@dataclass(frozen=True)
class _Counted:
    """One contact as the replay counts it: the properties it lacked (then it was not judged),
    its lead source and stage, and the flip when its verdict changed."""

    missing: tuple[str, ...] = ()
    source: str = NO_SOURCE
    stage: str = NO_STAGE
    flip: Flip | None = None


def _judge_chunk(
    chunk: list[LatestDecision], config: Configuration, schema: ObjectSchema
) -> list[_Counted]:
    needed = config.judged_properties
    source_property = config.mapping.lead_source
    counted = []
    for latest in chunk:
        old = latest.decision
        missing = needed.difference(old.inputs)
        if missing:
            counted.append(_Counted(missing=tuple(sorted(missing))))
            continue
        contact = SourceContact(old.contact_id, old.inputs, old.modified_at_ms)
        source = _lead_source(old, source_property)
        was = passes_gate(old)
        stage = None if was else _still_rejected(contact, config)
        if stage is not None:
            counted.append(_Counted(source=source, stage=stage))
            continue
        new = judge(contact, config, schema, latest.ledger)
        stage = (new.transition.wanted if new.transition else None) or NO_STAGE
        now = new.outcome in PASSING
        flip = None
        if was != now:
            direction = NEWLY_QUALIFIED if now else NEWLY_REJECTED
            flip = Flip(direction, source, stage, _slim(old), _slim(new))
        counted.append(_Counted(source=source, stage=stage, flip=flip))
    return counted


def _still_rejected(contact: SourceContact, config: Configuration) -> str | None:
    """The stage of a lead the proposal's rules alone reject (``None``: judge it whole).

    A lead the stored decision held back, and the proposed rules hold back too, cannot flip
    whatever the map says: mapping it only to drop the answer is most of a replay's work, so
    it is skipped. The stage is the one :func:`~crmbridge.judgement.judge` records."""
    try:
        qualification = config.rules.evaluate(contact)
    except Exception:  # judge() records it as the contact's internal error
        return None
    if qualification.qualified:
        return None
    stage_map = config.mapping.stage_map
    wanted = qualification.stage or (stage_map.stage_name_for(contact) if stage_map else None)
    return wanted or NO_STAGE


_worker: tuple[Configuration, ObjectSchema, StateStore] | None = None


def _start_worker(config: Configuration, schema: ObjectSchema, address: StoreAddress) -> None:
    global _worker  # noqa: PLW0603 - one configuration and store per worker process, set once
    configure_logging("json", "WARNING")  # a bug's traceback goes to stderr, never stdout
    store = open_store(address.url, pipeline=address.pipeline, read_only=True)
    _worker = (config, schema, store)


def _judge_range(bounds: tuple[str, str]) -> list[_Counted]:
    assert _worker is not None
    config, schema, store = _worker
    return _judge_chunk(store.latest_decisions_between(*bounds), config, schema)


def replay(
    chunks: Iterable[list[LatestDecision]],
    config: Configuration,
    schema: ObjectSchema,
    *,
    describe_fetched_at: str | None = None,
) -> WhatIf:
    """Judge every contact of ``chunks`` (``StateStore.latest_decisions()``) under ``config``
    with the stored describe ``schema``, and count what flips. Pure but for its input."""
    result = _empty(config, describe_fetched_at)
    for chunk in chunks:
        _merge(result, _judge_chunk(chunk, config, schema))
    return result


def replay_store(
    store: StateStore,
    config: Configuration,
    schema: ObjectSchema,
    *,
    address: StoreAddress | None = None,
    workers: int = 1,
    chunk_size: int = 1000,
    describe_fetched_at: str | None = None,
) -> WhatIf:
    """:func:`replay` over the whole store; with ``workers`` > 1 (and the store's
    ``address``), that many processes each read and judge ranges of contacts. Same counts, same
    order of flips."""
    if workers <= 1 or address is None:
        chunks = store.latest_decisions(chunk_size=chunk_size)
        return replay(chunks, config, schema, describe_fetched_at=describe_fetched_at)
    result = _empty(config, describe_fetched_at)
    ranges = store.contact_ranges(chunk_size=chunk_size)
    with _pool_context().Pool(workers, _start_worker, (config, schema, address)) as pool:
        for counted in pool.imap(_judge_range, ranges):
            _merge(result, counted)
    return result


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (one thread: nothing half-held is copied) and cheap: the workers
    start at once and share what is imported; spawn otherwise. Either way each worker opens
    the store itself and never touches connections of this process (a forked worker leaves
    by ``os._exit``, so it does not even close them)."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _empty(config: Configuration, describe_fetched_at: str | None) -> WhatIf:
    return WhatIf(
        rule_set=config.rules.name,
        version=config.rules.version,
        readers=config.property_readers(),
        lead_source_property=config.mapping.lead_source,
        describe_fetched_at=describe_fetched_at,
    )


def _merge(result: WhatIf, counted: list[_Counted]) -> None:
    for item in counted:
        result.stored += 1
        if item.missing:
            result.not_replayable.update(item.missing)
            continue
        result.replayed += 1
        result.by_lead_source[item.source]["replayed"] += 1
        result.by_stage[item.stage]["replayed"] += 1
        flip = item.flip
        if flip is None:
            continue
        if flip.direction == NEWLY_QUALIFIED:
            result.newly_qualified += 1
            criteria = {r.criterion for r in flip.old.reasons}
        else:
            result.newly_rejected += 1
            criteria = {r.criterion for r in flip.new.reasons}
        for criterion in criteria:
            result.by_criterion[criterion][flip.direction] += 1
        result.by_lead_source[item.source][flip.direction] += 1
        result.by_stage[item.stage][flip.direction] += 1
        result.flips.append(flip)


def _slim(decision: Decision) -> Decision:
    """A flipped decision as reports show it: without the inputs, criteria and payload (a
    worker sends fewer bytes back; a reviewer looks the contact up for the rest)."""
    return replace(decision, inputs={}, criteria=(), payload=None)


def _lead_source(decision: Decision, prop: str) -> str:
    if prop not in decision.inputs:
        return NOT_PULLED
    return (decision.inputs[prop] or "").strip() or NO_SOURCE
