"""The reviewers' workflow over the reject log: statuses, the changes people make, and which
change makes sense from which status. Pure: the store persists what :func:`refusal` allows.

::

    open ──approve──► excepted ──(next pass syncs it)──► resolved "synced as exception"
     │ ▲  ──dismiss──► dismissed
     │ │  ──escalate─► escalated (to a person or team, with a note; age shown)
     │ └──reopen───── excepted / dismissed / escalated
     └──(the lead later syncs, or is judged again)──► resolved "synced later" / "superseded"

``resolved`` is final: the ledger moved on (the lead synced, or a newer reject replaced this
one). crmbridge itself resolves any reject that is not yet resolved, whatever its status, when
the contact is judged again; each such change is an audit entry by ``crmbridge``.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from enum import StrEnum

from crmbridge.model import Decision, RejectStage

__all__ = [
    "ACTIONS",
    "QUEUE",
    "REVIEWER_VARIABLE",
    "SYSTEM_ACTOR",
    "Action",
    "AuditEntry",
    "ReviewChange",
    "ReviewResult",
    "Status",
    "refusal",
    "reviewer_name",
]

#: Who the store names for the changes crmbridge makes itself.
SYSTEM_ACTOR = "crmbridge"
REVIEWER_VARIABLE = "CRMBRIDGE_REVIEWER"


class Status(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    EXCEPTED = "excepted"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"


class Action(StrEnum):
    APPROVE = "approve"
    DISMISS = "dismiss"
    ESCALATE = "escalate"
    REOPEN = "reopen"
    REPLAY = "replay"  # marked by `rejects replay --apply` to be judged again next pass
    RESOLVE = "resolve"  # by crmbridge: the contact was judged again


#: The work queue: rejects someone still has to look at.
QUEUE = (Status.OPEN, Status.ESCALATED)

#: What each reviewer's action does: the statuses it starts from, and the one it leads to.
ACTIONS: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.APPROVE: (frozenset({Status.OPEN, Status.ESCALATED}), Status.EXCEPTED),
    Action.DISMISS: (frozenset({Status.OPEN, Status.ESCALATED}), Status.DISMISSED),
    Action.ESCALATE: (frozenset({Status.OPEN, Status.ESCALATED}), Status.ESCALATED),
    Action.REOPEN: (
        frozenset({Status.ESCALATED, Status.EXCEPTED, Status.DISMISSED}),
        Status.OPEN,
    ),
    Action.REPLAY: (frozenset({Status.OPEN, Status.ESCALATED}), Status.OPEN),
}


@dataclass(frozen=True)
class ReviewChange:
    """One change a person asks for: the action, who acts, the note, and for an escalation to
    whom."""

    action: Action
    actor: str
    note: str | None = None
    assignee: str | None = None


@dataclass(frozen=True)
class ReviewResult:
    """What became of one reject a change was asked for: done (``from`` → ``to``) or refused
    with the reason in words."""

    reject_id: int
    done: bool
    message: str
    from_status: str | None = None
    to_status: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One change of a reject's review status."""

    id: int
    reject_id: int
    at: str
    actor: str
    action: str
    from_status: str
    to_status: str
    assignee: str | None = None
    note: str | None = None


def refusal(change: ReviewChange, status: str, decision: Decision) -> str | None:  # noqa: PLR0911 - one message per refusal
    """Why ``change`` makes no sense for a reject with ``status`` and ``decision`` (``None``:
    it does). The message says what the reviewer can do instead."""
    action = change.action
    if action not in ACTIONS:
        return f"{action} is crmbridge's own change, not a reviewer's"
    starts, leads_to = ACTIONS[action]
    if status == Status.RESOLVED:
        return "already resolved (the lead was judged again since): nothing to change"
    if action is Action.ESCALATE and not (change.assignee or "").strip():
        return "escalate needs --to: the person or team to escalate to"
    if status not in starts:
        if status == leads_to:
            return f"already {status}"
        hint = " (reopen it first)" if action is not Action.REOPEN else ""
        return f"cannot {action} a reject that is {status}{hint}"
    if action is Action.APPROVE:
        return _approval_refusal(decision)
    return None


def _approval_refusal(decision: Decision) -> str | None:
    """An exception overrides crmbridge's rules, nothing else: not Salesforce's refusal, not a
    map that cannot build a Lead, not a bug."""
    if decision.stage is RejectStage.SALESFORCE:
        codes = ", ".join(sorted({r.code or r.criterion for r in decision.reasons}))
        return (
            f"Salesforce itself refused this lead ({codes}): an exception overrides "
            "crmbridge's rules only; fix the data in HubSpot or the rule in Salesforce"
        )
    blocking = [
        r.criterion for r in decision.reasons if r.criterion.startswith(("mapping.", "internal"))
    ]
    if blocking:
        return (
            f"the field map cannot build a Lead from it ({', '.join(blocking)}): an exception "
            "overrides the qualification rules only; fix the value in HubSpot"
        )
    return None


def reviewer_name(given: str | None) -> str:
    """Who is acting: ``--as``, else ``CRMBRIDGE_REVIEWER``, else the operating-system user."""
    for name in (given, os.environ.get(REVIEWER_VARIABLE)):
        if name and name.strip():
            return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
