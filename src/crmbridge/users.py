"""Console users: roles and passwords (argon2id through ``argon2-cffi``).

Roles, each with what the roles below it may do: ``viewer`` reads the reject log, statistics
and reports; ``reviewer`` also approves, dismisses, escalates and reopens; ``admin`` also
manages users.
"""

from __future__ import annotations

from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crmbridge.ports import StateStore, User

__all__ = [
    "MIN_PASSWORD_CHARS",
    "Role",
    "check_password",
    "hash_password",
    "may",
    "password_problem",
]

MIN_PASSWORD_CHARS = 10
_HASHER = PasswordHasher()
#: Checked against when the user does not exist, so a wrong name costs as long as a wrong
#: password (an attacker cannot tell which names exist by timing).
_DUMMY_HASH = _HASHER.hash("crmbridge: no such user")


class Role(StrEnum):
    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


def may(role: str, needed: Role) -> bool:
    """True when ``role`` is ``needed`` or above it."""
    try:
        return _RANK[Role(role)] >= _RANK[needed]
    except ValueError:
        return False


def password_problem(password: str) -> str | None:
    """What is wrong with a new password (``None``: fine)."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    if password.strip() != password:
        return "a password cannot start or end with a space"
    return None


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; a new salt each time)."""
    return _HASHER.hash(password)


def check_password(store: StateStore, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs; ``None`` otherwise (unknown name included, at the
    same cost). A hash made with weaker parameters is replaced on success."""
    user = store.user(name)
    try:
        _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        store.save_user(user.name, user.role, _HASHER.hash(password), new=False)
    return user
