"""The stage map: which Salesforce Lead ``Status`` a HubSpot contact's stage translates to.

Portals differ (Raw/Warm/Hot, MQL/SAL/SQL, custom lifecycle stage ids), so the translation is an
ordered list in ``stages.yaml``: the first stage whose ``when`` matches wins, else the default.
Matching trims and ignores case (HubSpot internal values are lower-case ids or upper-case
enumerations; an admin should not have to remember which). Contract: never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crmbridge.errors import Location
from crmbridge.model import SourceContact

__all__ = ["Stage", "StageMap"]

#: In a ``when`` list, ``null`` stands for "the property is empty".
EMPTY = ""


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
