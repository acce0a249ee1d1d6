"""The stage map: which Salesforce Lead ``Status`` a HubSpot contact's stage translates to.

Portals differ (Raw/Warm/Hot, MQL/SAL/SQL, custom lifecycle stage ids), so the translation is an
ordered list in ``stages.yaml``: the first stage whose ``when`` matches wins, else the default
(a stage named ``default``). Matching trims and ignores case (HubSpot internal values are
lower-case ids or upper-case enumerations; an admin should not have to remember which).

The optional ``moves`` policy says which stage changes are allowed: forward along ``order``
(MQL → SAL → SQL), the ``allowed`` moves (recycle, disqualify), and what any other move, a
regression, does: ``forbid`` (the stage stays; the rest of the lead syncs), ``allow``, or
``hold`` (the lead is held back for a reviewer). :meth:`StageMap.move` judges a move from the
stage crmbridge last pushed; every decision records the result. Contract: never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from crmbridge.errors import Location
from crmbridge.model import MoveVerdict, SourceContact, StageMove

__all__ = ["DEFAULT_STAGE", "Move", "Regression", "Stage", "StageMap", "StagePolicy"]

#: In a ``when`` list, ``null`` stands for "the property is empty".
EMPTY = ""
#: The name of the stage ``default:`` gives (in ``moves`` and on decisions).
DEFAULT_STAGE = "default"
#: In ``allowed`` moves, ``from: any`` means from every stage.
ANY = "any"


class Regression(StrEnum):
    FORBID = "forbid"
    ALLOW = "allow"
    HOLD = "hold"


@dataclass(frozen=True)
class Move:
    """An allowed move: from any of ``sources`` to any of ``targets`` (``None``: any stage)."""

    sources: frozenset[str] | None
    targets: frozenset[str] | None

    def allows(self, before: str, wanted: str) -> bool:
        return (self.sources is None or before in self.sources) and (
            self.targets is None or wanted in self.targets
        )


@dataclass(frozen=True)
class StagePolicy:
    """``moves:`` of ``stages.yaml``: the funnel order, other allowed moves, and what a
    regression (any other move) does."""

    order: tuple[str, ...]
    allowed: tuple[Move, ...] = ()
    regression: Regression = Regression.FORBID

    def judge(self, before: str, wanted: str) -> StageMove:
        """The verdict on moving a lead from ``before`` to ``wanted`` (two different stages)."""
        order = self.order
        if before in order and wanted in order and order.index(wanted) > order.index(before):
            return StageMove(before, wanted, wanted, MoveVerdict.FORWARD)
        if any(move.allows(before, wanted) for move in self.allowed):
            return StageMove(before, wanted, wanted, MoveVerdict.ALLOWED)
        if self.regression is Regression.ALLOW:
            return StageMove(before, wanted, wanted, MoveVerdict.REGRESSION_ALLOWED)
        forbid = self.regression is Regression.FORBID
        verdict = MoveVerdict.FORBIDDEN if forbid else MoveVerdict.HELD
        return StageMove(before, wanted, before, verdict)


@dataclass(frozen=True)
class Stage:
    """One entry of ``stages:``: every ``when`` property must hold one of its accepted values."""

    name: str
    #: property → accepted values, trimmed and case-folded ("" = empty).
    when: Mapping[str, frozenset[str]]
    status: str
    location: Location
    status_location: Location

    def matches(self, contact: SourceContact) -> bool:
        for prop, accepted in self.when.items():
            raw = contact.get(prop)
            value = raw.strip().casefold() if raw is not None else EMPTY
            if value not in accepted:
                return False
        return True


@dataclass(frozen=True)
class StageMap:
    """Ordered stages, a default, and the Lead field (``target``) they set."""

    target: str
    stages: tuple[Stage, ...]
    default: str | None
    target_location: Location
    default_location: Location | None = None
    policy: StagePolicy | None = None

    @property
    def source_properties(self) -> frozenset[str]:
        return frozenset(prop for stage in self.stages for prop in stage.when)

    def stage_for(self, contact: SourceContact) -> Stage | None:
        """The first stage that matches ``contact``, or ``None`` (then the default applies)."""
        for stage in self.stages:
            if stage.matches(contact):
                return stage
        return None

    def status_of(self, contact: SourceContact) -> str | None:
        """The target value for ``contact``: the first matching stage's, else the default."""
        stage = self.stage_for(contact)
        return stage.status if stage is not None else self.default

    def stage_name_for(self, contact: SourceContact) -> str | None:
        """The name of the stage ``contact`` is at: the first matching stage, else
        ``default`` when the map has a default, else ``None``."""
        stage = self.stage_for(contact)
        if stage is not None:
            return stage.name
        return DEFAULT_STAGE if self.default is not None else None

    @property
    def names(self) -> tuple[str, ...]:
        """Every stage name, ``default`` last when the map has a default."""
        names = tuple(stage.name for stage in self.stages)
        return (*names, DEFAULT_STAGE) if self.default is not None else names

    def status_for(self, name: str) -> str | None:
        """The target value of the stage called ``name`` (``None``: no such stage)."""
        if name == DEFAULT_STAGE:
            return self.default
        return next((stage.status for stage in self.stages if stage.name == name), None)

    def move(self, before: str | None, wanted: str) -> StageMove:
        """Judge moving a lead last pushed at ``before`` (``None``: never) to ``wanted``."""
        if before is None:
            return StageMove(None, wanted, wanted, MoveVerdict.FIRST)
        if before == wanted:
            return StageMove(before, wanted, wanted, MoveVerdict.SAME)
        if self.policy is None or before not in self.names:
            # No policy, or a stage the map no longer has (renamed): nothing to judge against.
            return StageMove(before, wanted, wanted, MoveVerdict.UNCHECKED)
        return self.policy.judge(before, wanted)
