"""The reject log's free-text search: one searchable text per reject, and how it is queried.

Free text finds a reject by its contact id (exact), or anywhere (ignoring case) in its e-mail,
its reasons (criterion, message, code, fields) or the HubSpot values it was judged on (values,
not property names). Each reject keeps that text once, normalised (NFC, lower case, storable on
both backends), in ``decisions.search_text``, written with the decision by the SQL store and
filled for older rejects by revision 0007. The search lower-cases its needle the same way, so a
substring test on the stored text is the whole search.

Indexes: on SQLite an FTS5 table with the ``trigram`` tokenizer (``decisions_search``, kept in
step by triggers), on PostgreSQL a ``pg_trgm`` GIN index. Where the index could not be made (an
SQLite older than 3.34, a role that may not create ``pg_trgm``), or for needles shorter than a
trigram, the search reads every reject's text instead: the same hits, only slower.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)

from crmbridge.state.codec import decode_text
from crmbridge.state.schema import decisions

#: The SQLite FTS5 table (external content: ``decisions.search_text``) and its index.
FTS_TABLE = "decisions_search"
#: The PostgreSQL trigram index on ``decisions.search_text``.
TRIGRAM_INDEX = "decisions_search_trgm"
#: Needles shorter than this hold no trigram: no index can answer them.
MIN_INDEXED = 3
#: Between the parts of a searchable text (no needle spans two values).
_SEPARATOR = "\n"


def normalise(value: str) -> str:
    """``value`` as the search compares it: NFC, lower case, NUL and characters without a
    UTF-8 form (lone surrogates) replaced, so the text is storable on both backends."""
    folded = unicodedata.normalize("NFC", value).lower().replace("\x00", " ")
    return folded.encode("utf-8", "replace").decode("utf-8")


def searchable_text(email: str | None, reasons_json: str, inputs_json: str) -> str:
    """The searchable text of one reject, from its stored columns (``state.codec``'s forms)."""
    parts: list[str] = []
    decoded = decode_text(email)
    if decoded:
        parts.append(decoded)
    for reason in json.loads(reasons_json):
        parts.extend(_strings(reason))
    inputs = json.loads(inputs_json)
    if isinstance(inputs, dict):
        parts.extend(_strings(list(inputs.values())))
    return normalise(_SEPARATOR.join(part for part in parts if part))


def _strings(value: Any) -> Iterable[str]:
    """Every value in ``value`` as text, depth first (mapping values, not keys)."""
    if value is None:
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, bool):
        yield "true" if value else "false"
    else:
        yield str(value)


def fts_phrase(needle: str) -> str:
    """An FTS5 query matching ``needle`` as a substring (a trigram phrase, quotes doubled)."""
    return '"' + needle.replace('"', '""') + '"'


def has_index(conn: Connection) -> bool:
    """Whether this store's free-text search has its index (revision 0007 could make it)."""
    if conn.dialect.name == "sqlite":
        found = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": FTS_TABLE},
        )
    else:
        found = conn.execute(
            text(
                "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = 'decisions' AND indexname = :name"
            ),
            {"name": TRIGRAM_INDEX},
        )
    return found.first() is not None


def text_condition(wanted: str, *, dialect: str, indexed: bool) -> ColumnElement[bool]:
    """Rejects whose contact id is ``wanted`` or whose searchable text holds it (any case).

    With the index and a needle of at least :data:`MIN_INDEXED` characters the index answers;
    otherwise every reject's text is read (the same rows)."""
    needle = normalise(wanted)
    column = decisions.c.search_text
    found: ColumnElement[bool]
    if dialect == "sqlite":
        if indexed and len(needle) >= MIN_INDEXED:
            matches: Select[Any] = (
                select(literal_column("rowid"))
                .select_from(table(FTS_TABLE))
                .where(literal_column(FTS_TABLE).op("MATCH")(fts_phrase(needle)))
            )
            found = decisions.c.id.in_(matches)
        else:
            found = func.instr(column, needle) > 0
    else:
        # pg_trgm's GIN index answers LIKE '%…%' for needles of 3 or more characters.
        found = column.contains(needle, autoescape=True)
    return or_(decisions.c.contact_id == wanted, found)
