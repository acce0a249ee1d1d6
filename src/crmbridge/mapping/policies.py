"""What the field map lets crmbridge write, and what it does with a qualified lead's bad value.

Two per-field choices of ``fields.yaml``, both pure logic:

* ``update``: reps edit Leads in Salesforce, and crmbridge must not clobber their work.
  ``always`` (the default) sends the field on create and on every update; ``if_blank`` sends it
  on update only while the Lead's field is blank in Salesforce (or holds the placeholder);
  ``on_create`` only when the Lead is created; ``never`` not at all (the value is still mapped,
  checked and recorded). The two middle ones need the Lead's current values: the pipeline
  reads them in one query per batch, and only when some field of the map uses them
  (:func:`needs_current_values`).
* ``incomplete``: a lead that meets every criterion but lacks a value Salesforce needs, or has
  one that is invalid (a malformed e-mail), is ``reject``-ed (the default), or synced with the
  map's ``placeholder`` text (written when the Lead is created, never over what it holds later),
  or synced ``omit``-ting the value; either way the decision carries a flag for a reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from crmbridge.model import FieldValue

__all__ = [
    "DEFAULT_PLACEHOLDER",
    "Incomplete",
    "UpdatePolicy",
    "fields_to_send",
    "is_blank",
    "needs_current_values",
]

#: What HubSpot's own Salesforce connector writes for a value Salesforce requires.
DEFAULT_PLACEHOLDER = "[not provided]"


class UpdatePolicy(StrEnum):
    ALWAYS = "always"
    IF_BLANK = "if_blank"
    ON_CREATE = "on_create"
    NEVER = "never"


class Incomplete(StrEnum):
    REJECT = "reject"
    PLACEHOLDER = "placeholder"
    OMIT = "omit"


#: Policies that need to know whether the Lead exists, and what it holds.
READS_CURRENT = frozenset({UpdatePolicy.IF_BLANK, UpdatePolicy.ON_CREATE})


def needs_current_values(policies: Mapping[str, UpdatePolicy]) -> bool:
    """True when some field's policy needs the Lead's current values before an upsert."""
    return any(policy in READS_CURRENT for policy in policies.values())


def is_blank(value: object, placeholder: str = DEFAULT_PLACEHOLDER) -> bool:
    """A Salesforce value nobody has filled in: null, text of spaces only, or the placeholder
    crmbridge wrote for a missing value."""
    if isinstance(value, str):
        return not value.strip() or value == placeholder
    return value is None


def fields_to_send(
    payload: Mapping[str, FieldValue],
    policies: Mapping[str, UpdatePolicy],
    current: Mapping[str, object] | None,
    *,
    placeholder: str = DEFAULT_PLACEHOLDER,
) -> dict[str, FieldValue]:
    """The part of ``payload`` the update policies let through.

    ``current`` is the Lead as Salesforce holds it (``None``: no such Lead, this upsert creates
    it). Fields without a policy are ``always``. Pure; never raises."""
    sent: dict[str, FieldValue] = {}
    for name, value in payload.items():
        policy = policies.get(name, UpdatePolicy.ALWAYS)
        if policy is UpdatePolicy.NEVER:
            continue
        if current is not None and policy is UpdatePolicy.ON_CREATE:
            continue
        if (
            current is not None
            and policy is UpdatePolicy.IF_BLANK
            and not is_blank(current.get(name))
        ):
            continue
        sent[name] = value
    return sent


def withheld(payload: Iterable[str], sent: Mapping[str, FieldValue]) -> tuple[str, ...]:
    """The fields of ``payload`` the policies kept back, in payload order."""
    return tuple(name for name in payload if name not in sent)
