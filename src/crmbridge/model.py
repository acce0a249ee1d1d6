"""Domain values shared by every part of crmbridge: frozen, typed, free of any client library.

Every value here can be stored and read back as JSON, so a decision keeps its inputs and the
rule-set version it was made under (what-if replays and the reviewer console read them later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: A value a Salesforce field can take in a JSON request body.
FieldValue = str | int | float | bool | None


@dataclass(frozen=True)
class SourceContact:
    """One HubSpot contact as pulled: every property is a string or ``None`` (the wire form)."""

    id: str
    properties: Mapping[str, str | None]
    modified_at_ms: int
    archived: bool = False

    @property
    def numeric_id(self) -> int:
        """The contact id as an integer (HubSpot record ids are numeric)."""
        return int(self.id)

    def get(self, name: str) -> str | None:
        """The raw property value, or ``None`` when unset."""
        return self.properties.get(name)


@dataclass(frozen=True, order=True)
class Cursor:
    """Incremental-sync bookmark: everything before ``modified_at_ms`` is done, and at
    ``modified_at_ms`` every contact with an id up to ``last_id`` is done."""

    modified_at_ms: int = 0
    last_id: int = 0

    def covers(self, contact: SourceContact) -> bool:
        """True when ``contact`` (at its current modification time) is already behind the cursor."""
        return (contact.modified_at_ms, contact.numeric_id) <= (self.modified_at_ms, self.last_id)


@dataclass(frozen=True)
class PropertyInfo:
    """One HubSpot contact property definition (``GET /crm/v3/properties/contacts``): what a
    starter map is built from. ``options`` are (internal value, label) pairs."""

    name: str
    label: str
    type: str
    field_type: str
    options: tuple[tuple[str, str], ...] = ()
    read_only: bool = False
    hubspot_defined: bool = True


@dataclass(frozen=True)
class PicklistValue:
    value: str
    label: str
    active: bool = True
    default: bool = False


#: Salesforce field types that hold numbers.
NUMERIC_TYPES = frozenset({"currency", "double", "percent", "int", "long"})
#: Salesforce field types a placeholder text may go into.
TEXT_TYPES = frozenset({"string", "textarea"})


@dataclass(frozen=True)
class FieldSpec:
    """One Salesforce field as ``describe`` tells it (the parts crmbridge checks before pushing)."""

    name: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    unique: bool = False
    restricted_picklist: bool = False
    picklist_values: tuple[PicklistValue, ...] = ()
    precision: int = 0
    scale: int = 0

    @property
    def required_on_create(self) -> bool:
        return (
            self.createable
            and not self.nillable
            and not self.defaulted_on_create
            and self.type != "boolean"
        )

    @property
    def active_values(self) -> tuple[str, ...]:
        return tuple(p.value for p in self.picklist_values if p.active)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "picklist_values"}
        data["picklist_values"] = [vars(p) for p in self.picklist_values]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldSpec:
        values = tuple(PicklistValue(**p) for p in data.get("picklist_values") or ())
        return cls(**{**data, "picklist_values": values})


@dataclass(frozen=True)
class ObjectSchema:
    """The describe of one sObject (``Lead``), keyed by field API name."""

    name: str
    fields: Mapping[str, FieldSpec]

    def field(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data :meth:`from_json` reads back (the state store keeps the last one)."""
        return {"name": self.name, "fields": [f.to_json() for f in self.fields.values()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectSchema:
        specs = (FieldSpec.from_json(f) for f in data.get("fields") or ())
        return cls(name=str(data["name"]), fields={f.name: f for f in specs})


@dataclass(frozen=True)
class Reason:
    """Why a lead did not go through: one failed criterion, mapping problem or Salesforce error.

    ``criterion`` names what failed (``budget``, ``mapping.Company``, ``salesforce``);
    ``message`` is the sentence a reviewer reads; ``code`` is a machine code where one exists
    (a Salesforce ``statusCode``, ``PARSE_ERROR``, ``REQUIRED``)."""

    criterion: str
    message: str
    code: str | None = None
    fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "message": self.message,
            "code": self.code,
            "fields": list(self.fields),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reason:
        return cls(
            criterion=str(data["criterion"]),
            message=str(data["message"]),
            code=data.get("code"),
            fields=tuple(data.get("fields") or ()),
        )


@dataclass(frozen=True)
class CriterionResult:
    """The outcome of one named criterion of the qualification rule set."""

    name: str
    passed: bool
    reason: str | None = None
    children: tuple[CriterionResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "children": [c.to_json() for c in self.children],
        }


@dataclass(frozen=True)
class Qualification:
    """What the rule set said about one contact, with the version of the rule set that said it.

    With tiers, ``tier`` names the grade the lead reached (``None``: none), ``qualified`` is
    whether that tier syncs, ``stage`` and ``fields`` are what the tier sets in Salesforce, and
    ``grade_reasons`` say why a lead that does not sync fell short (the score, the tier)."""

    qualified: bool
    rule_set_version: str
    results: tuple[CriterionResult, ...]
    tier: str | None = None
    score: int | None = None
    stage: str | None = None
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    grade_reasons: tuple[Reason, ...] = ()

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The grade's reasons, then one reason per failed top-level criterion, in file order."""
        return self.grade_reasons + tuple(
            Reason(criterion=r.name, message=r.reason or f"{r.name}: not met", code="RULE")
            for r in self.results
            if not r.passed
        )


@dataclass(frozen=True)
class MappedLead:
    """A contact in the Salesforce Lead's vocabulary, ready to upsert by external id."""

    contact_id: str
    fields: Mapping[str, FieldValue]


class FlagAction(StrEnum):
    """What the map did with a qualified lead's missing or invalid value instead of rejecting."""

    PLACEHOLDER = "placeholder"  # sent the map's placeholder text (``[not provided]``)
    OMITTED = "omitted"  # left the field out of the payload


@dataclass(frozen=True)
class Flag:
    """A value a lead was synced without (or with a placeholder for): a reviewer should fix it
    in Salesforce or HubSpot. ``code`` is the mapping problem (``REQUIRED``, ``INVALID_EMAIL``)."""

    field: str
    code: str
    message: str
    action: FlagAction

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "code": self.code,
            "message": self.message,
            "action": self.action.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Flag:
        return cls(
            field=str(data["field"]),
            code=str(data["code"]),
            message=str(data["message"]),
            action=FlagAction(data["action"]),
        )


@dataclass(frozen=True)
class MapResult:
    """The mapper's answer: a lead, or the reasons it could not build one (never both empty).

    ``flags`` name the values the lead goes without (or with a placeholder for), by the map's
    ``incomplete`` choice, instead of being rejected for them."""

    lead: MappedLead | None
    reasons: tuple[Reason, ...] = ()
    flags: tuple[Flag, ...] = ()

    @property
    def ok(self) -> bool:
        return self.lead is not None and not self.reasons


class Outcome(StrEnum):
    """What happened to one contact version in one pass."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # mapped payload equals the last one pushed: no API call
    REJECTED = "rejected"  # qualification, mapping or a permanent Salesforce record error
    PARKED = "parked"  # transient failure after bounded retries: retried next pass
    SKIPPED = "skipped"  # archived in HubSpot: never deletes anything in Salesforce
    #: Judged qualified and mapped, waiting for its push: a judgement's answer, never stored
    #: (the push turns it into created, updated, rejected or parked).
    TO_PUSH = "to_push"


class MoveVerdict(StrEnum):
    """What the stage policy made of a lead's stage change (``stages.yaml`` ``moves``)."""

    FIRST = "first"  # no stage pushed before: the lead starts at the wanted stage
    SAME = "same"
    FORWARD = "forward"  # later along ``order``
    ALLOWED = "allowed"  # listed under ``allowed`` (recycle, disqualify …)
    UNCHECKED = "unchecked"  # the stage map has no ``moves`` policy: moved as asked
    REGRESSION_ALLOWED = "regression allowed"  # backwards, and ``regression: allow``
    FORBIDDEN = "forbidden"  # backwards, ``regression: forbid``: the stage is kept
    HELD = "held"  # backwards, ``regression: hold``: the lead is held for review


@dataclass(frozen=True)
class StageMove:
    """One lead's stage transition: where it stood (the stage last pushed), the stage its data
    asks for, where the decision leaves it, and the policy's verdict. Recorded on decisions."""

    before: str | None
    wanted: str | None
    after: str | None
    verdict: MoveVerdict

    @property
    def moves(self) -> bool:
        """True when the decision changes the lead's stage in Salesforce."""
        return self.after != self.before and self.verdict is not MoveVerdict.HELD

    def text(self) -> str:
        """``SQL → MQL: forbidden (stays SQL)``, as reports show it."""
        arrow = f"{self.before or '(none)'} → {self.wanted or '(none)'}"
        if self.verdict is MoveVerdict.FORBIDDEN:
            return f"{arrow}: forbidden (stays {self.after})"
        if self.verdict is MoveVerdict.HELD:
            return f"{arrow}: backwards, held for review"
        return f"{arrow}: {self.verdict.value}"

    def to_json(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "wanted": self.wanted,
            "after": self.after,
            "verdict": self.verdict.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageMove:
        return cls(
            before=data.get("before"),
            wanted=data.get("wanted"),
            after=data.get("after"),
            verdict=MoveVerdict(data["verdict"]),
        )


class RejectStage(StrEnum):
    QUALIFICATION = "qualification"
    MAPPING = "mapping"
    SALESFORCE = "salesforce"


@dataclass(frozen=True)
class RecordError:
    """One error Salesforce returned for one record (``statusCode`` / ``errorCode``)."""

    code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushResult:
    """Salesforce's answer for one record of an upsert batch."""

    contact_id: str
    success: bool
    salesforce_id: str | None = None
    created: bool = False
    errors: tuple[RecordError, ...] = ()
    transient: bool = False  # a failure worth retrying (UNABLE_TO_LOCK_ROW, rolled back …)


@dataclass(frozen=True)
class Decision:
    """Everything crmbridge decided about one contact version, kept as data.

    ``inputs`` holds the raw HubSpot properties the decision read, so a new rule set can be
    replayed over stored decisions without calling HubSpot again. ``tier`` and ``score`` are
    the grade the rules gave (``None`` without tiers or points), ``lead_stage`` the stage the
    lead is at in Salesforce once this decision is done, ``transition`` the stage move it
    judged, and ``flags`` the values it synced without (for a reviewer to fix).
    ``lead_source`` is the contact's lead-source value (``fields.yaml`` ``lead_source:``),
    pulled and stored, never judged; ``exception`` is set on a lead a reviewer let through
    despite the rules (who approved it, when, the reject, the rule-set version it failed)."""

    contact_id: str
    modified_at_ms: int
    email: str | None
    outcome: Outcome
    rule_set_version: str
    qualified: bool
    inputs: Mapping[str, str | None]
    reasons: tuple[Reason, ...] = ()
    stage: RejectStage | None = None
    criteria: tuple[CriterionResult, ...] = ()
    payload: Mapping[str, FieldValue] | None = None
    payload_hash: str | None = None
    salesforce_id: str | None = None
    tier: str | None = None
    score: int | None = None
    lead_stage: str | None = None
    transition: StageMove | None = None
    flags: tuple[Flag, ...] = ()
    lead_source: str | None = None
    exception: Mapping[str, str] | None = None


@dataclass
class PassSummary:
    """Counts of one pass, as printed at its end and logged as one JSON event."""

    pulled: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    parked: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    #: Leads synced (created, updated) with flags: values a reviewer should fix.
    flagged: int = 0
    #: Leads synced (created, updated) as a reviewer's exception to the rules.
    exceptions: int = 0
    #: Rejects judged again from their stored values (approved, or marked by a replay).
    rejudged: int = 0
    hubspot_calls: int = 0
    salesforce_calls: int = 0
    stopped_early: str | None = None
    #: True when the pass stopped because credentials were refused (exit code 3).
    credentials_refused: bool = False
    #: True when HubSpot or Salesforce refused for a reason only a person can fix, other than
    #: credentials: TLS trust, the API disabled for the org, missing scopes, storage full. The
    #: fix is often made outside crmbridge, so ``run`` keeps trying with a backoff and
    #: ``sync --once`` exits 1, as at start.
    blocked: bool = False
    #: True when a stop was requested (SIGTERM/SIGINT) and the pass ended after a page.
    interrupted: bool = False
    #: True for a dry run: the counts say what a pass would do; nothing was written.
    dry_run: bool = False

    def count_reject(self, reasons: tuple[Reason, ...]) -> None:
        """Count one rejected lead, and each of its reasons under the criterion it names."""
        self.rejected += 1
        for reason in reasons:
            self.rejected_by_reason[reason.criterion] = (
                self.rejected_by_reason.get(reason.criterion, 0) + 1
            )
