"""What the SQL store's query mixins need from the store they are mixed into."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection


class StoreParts:
    """The connections, pipeline and clock of :class:`~crmbridge.state.store.SQLStateStore`,
    which defines them; the mixins (admin, review, service queries) only declare them here."""

    _pipeline: str

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _now(self) -> str:
        raise NotImplementedError
