"""Synonym tables: the many ways people type one value, read as that value before comparing.

"Chief Executive Officer", "Co-founder & CEO" and "CEO" are one job title to sales. A table maps
each canonical value to its variants; :meth:`Synonyms.canonical` reads a typed value as its
canonical one, or leaves it as it is. Lookups compare :func:`comparable` forms, so case,
punctuation, ``&`` versus ``and`` and extra spaces never matter.

Shared text logic: the qualification rules use it (``synonyms:`` in ``qualification.yaml``), and
it sits below both ``rules/`` and ``mapping/`` so either may.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["Synonyms", "comparable"]

_AMPERSAND = re.compile(r"\s*&\s*")
_NOT_WORD = re.compile(r"[^\w]+")


def comparable(text: str) -> str:
    """``text`` as synonyms compare it: case-folded, ``&`` read as ``and``, punctuation and runs
    of whitespace as single spaces, trimmed. ``"Co-Founder & CEO"`` → ``"co founder and ceo"``."""
    folded = _AMPERSAND.sub(" and ", text.casefold())
    return " ".join(_NOT_WORD.sub(" ", folded).split())


class Synonyms:
    """One synonym table: canonical value → its variants. Immutable after construction.

    Raises ``ValueError`` when one variant (as :func:`comparable` reads it) belongs to two
    canonical values; the loader reports that at the file's line before building a table."""

    def __init__(self, name: str, table: Mapping[str, Sequence[str]]) -> None:
        self.name = name
        self.table = {canonical: tuple(variants) for canonical, variants in table.items()}
        lookup: dict[str, str] = {}
        for canonical, variants in self.table.items():
            for variant in (canonical, *variants):
                key = comparable(variant)
                if lookup.get(key, canonical) != canonical:
                    raise ValueError(
                        f'"{variant}" is a synonym of both "{lookup[key]}" and "{canonical}"'
                    )
                lookup[key] = canonical
        self._lookup = lookup

    def __repr__(self) -> str:
        return f"Synonyms({self.name!r}, {len(self.table)} values)"

    def canonical(self, text: str) -> str:
        """The canonical value ``text`` is a variant of, or ``text`` unchanged."""
        return self._lookup.get(comparable(text), text)

    def canonical_json(self) -> dict[str, list[str]]:
        """The table as JSON-ready data (part of the rule set's content hash)."""
        return {canonical: list(variants) for canonical, variants in sorted(self.table.items())}
