"""Secret values, masked wherever text leaves the process.

Whatever holds a secret registers it (the settings' access tokens when the CLI loads them, each
adapter its own token, the JWT login every token it is issued), and every way out masks the
registered values as ``**********``: the messages the adapters build from library exceptions,
every log event (JSON or console, tracebacks included), the CLI's output and Python's own
report of an uncaught exception. It is a safety net behind the first rule: no code puts a
secret into a message in the first place.
"""

from __future__ import annotations

import threading

MASK = "**********"
#: Shorter values are not masked: they could not be secrets, and would mask ordinary words.
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_secrets: list[str] = []  # longest first, so a secret containing another is masked whole


def register_secret(value: str | None) -> None:
    """Mask ``value`` from now on in everything :func:`redact` sees (idempotent)."""
    if value is None or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value not in _secrets:
            _secrets.append(value)
            _secrets.sort(key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``**********``."""
    with _lock:
        secrets = tuple(_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
