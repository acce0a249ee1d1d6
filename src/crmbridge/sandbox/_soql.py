"""The Salesforce simulator's SOQL: a tokenizer, a parser and the evaluator of parsed queries.

Holds :func:`parse_soql`, which turns a query into a :class:`SoqlQuery` (or raises
``RequestRejectedError`` with Salesforce's 400 codes), and :meth:`SoqlQuery.run`, which filters and
sorts stored Lead records the way SOQL compares values. The subset is deliberately small
(docs/salesforce-api.md#soql): SELECT f[, f] FROM Lead [WHERE …] [ORDER BY f [ASC|DESC] [NULLS
FIRST|LAST], …] [LIMIT n] [OFFSET n]. WHERE takes comparisons (= != <> < <= > >=), [NOT] IN (…),
LIKE, NOT, parentheses, and AND or OR (mixing them without parentheses is an error, as in SOQL).
Anything else is refused with a message naming the simulator, never silently misread.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmbridge.sandbox._salesforce_schema import (
    NUMBER_TYPES,
    TEXT_TYPES,
    LeadField,
    LeadSchema,
    RequestRejectedError,
    Value,
    to_18,
)

SOQL_MAX_CHARS = 100_000
SOQL_MAX_OFFSET = 2_000

Predicate = Callable[[Mapping[str, Value]], bool]


@dataclass(frozen=True)
class _Token:
    kind: str  # str num dt word op ( ) , end
    text: str
    value: Any
    pos: int


_SOQL_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_TOKEN_NAMES = {"word": "a name", "num": "a number", "str": "a string literal", "op": "an operator"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _malformed(message: str) -> RequestRejectedError:
    return RequestRejectedError(400, "MALFORMED_QUERY", message)


def _string_literal(soql: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(soql):
        char = soql[i]
        if char == "'":
            return "".join(out), i + 1
        if char == "\\":
            nxt = soql[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt in ("%", "_"):  # LIKE escapes: kept for the pattern compiler
                out.append("\\" + nxt)
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", soql[i + 2 : i + 6]):
                out.append(chr(int(soql[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise _malformed(
                f"Invalid string literal '{soql[start : i + 2]}'. "
                f"Illegal character sequence '\\{nxt}' in string literal."
            )
        out.append(char)
        i += 1
    raise _malformed(f"unterminated string literal starting at position {start}")


def _tokenize(soql: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(soql):
        if soql[i] == "'":
            value, end = _string_literal(soql, i)
            tokens.append(_Token("str", soql[i:end], value, i))
            i = end
            continue
        match = _SOQL_TOKEN.match(soql, i)
        if match is None:
            raise _malformed(f"unexpected character {soql[i]!r} at position {i}")
        kind, text = match.lastgroup or "", match.group()
        if kind == "num":
            tokens.append(_Token(kind, text, Decimal(text), i))
        elif kind == "punct":
            tokens.append(_Token(text, text, text, i))
        elif kind != "ws":
            tokens.append(_Token(kind, text, text, i))
        i = match.end()
    tokens.append(_Token("end", "end of query", None, len(soql)))
    return tokens


def parse_datetime(value: str) -> dt.datetime:
    """Parse a SOQL datetime literal or a stored ``…+0000`` timestamp."""
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return dt.datetime.fromisoformat(text)


def _sort_key(spec: LeadField, value: Any) -> Any:
    """The value as SOQL compares it: text ignores case, ids compare in 18-character form."""
    if value is None:
        return None
    if spec.type in ("id", "reference"):
        return to_18(str(value))
    if spec.type in TEXT_TYPES:
        return str(value) if spec.case_sensitive else str(value).lower()
    if spec.type in NUMBER_TYPES:
        return float(value)
    if spec.type == "datetime":
        return value if isinstance(value, dt.datetime) else parse_datetime(str(value))
    return value


def _like(spec: LeadField, pattern: str) -> Predicate:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and pattern[i + 1 : i + 2] in ("%", "_"):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append({"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i])))
        i += 1
    regex = re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
    name = spec.name
    return lambda record: (
        record.get(name) is not None and bool(regex.fullmatch(str(record.get(name))))
    )


def _compare(spec: LeadField, op: str, literal: Any) -> Predicate:
    name, wanted = spec.name, _sort_key(spec, literal)
    if wanted is None:
        if op == "=":
            return lambda record: record.get(name) is None
        return lambda record: record.get(name) is not None
    if op == "=":
        return lambda record: _sort_key(spec, record.get(name)) == wanted
    if op in ("!=", "<>"):
        return lambda record: _sort_key(spec, record.get(name)) != wanted
    ordering = _ORDERING[op]

    def predicate(record: Mapping[str, Value]) -> bool:
        have = _sort_key(spec, record.get(name))
        return have is not None and ordering(have, wanted)

    return predicate


@dataclass(frozen=True)
class SoqlQuery:
    """A parsed query; ``run`` filters and sorts records, ``fields`` says what to project."""

    fields: tuple[LeadField, ...]
    where: Predicate | None
    order_by: tuple[tuple[LeadField, bool, bool], ...]  # field, descending, nulls first
    limit: int | None
    offset: int

    def run(self, records: Iterable[Mapping[str, Value]]) -> list[Mapping[str, Value]]:
        """The matching records themselves (not projected), sorted, offset and limited."""
        rows = [r for r in records if self.where is None or self.where(r)]
        if self.order_by:
            rows.sort(key=functools.cmp_to_key(self._compare))
        rows = rows[self.offset :]
        return rows if self.limit is None else rows[: self.limit]

    def _compare(self, a: Mapping[str, Value], b: Mapping[str, Value]) -> int:
        for spec, descending, nulls_first in self.order_by:
            left, right = _sort_key(spec, a.get(spec.name)), _sort_key(spec, b.get(spec.name))
            if left == right:
                continue
            if left is None:
                return -1 if nulls_first else 1
            if right is None:
                return 1 if nulls_first else -1
            result = -1 if left < right else 1
            return -result if descending else result
        return 0


class _SoqlParser:
    def __init__(self, schema: LeadSchema, soql: str) -> None:
        self._schema = schema
        self._tokens = _tokenize(soql)
        self._at = 0

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _next(self) -> _Token:
        token = self._tokens[self._at]
        self._at = min(self._at + 1, len(self._tokens) - 1)
        return token

    def _keyword(self, *words: str) -> str | None:
        token = self._peek()
        if token.kind == "word" and token.text.upper() in words:
            self._next()
            return token.text.upper()
        return None

    def _expect_keyword(self, word: str) -> None:
        if self._keyword(word) is None:
            raise _malformed(f"expected {word} but found '{self._peek().text}'")

    def _expect(self, kind: str) -> _Token:
        token = self._next()
        if token.kind != kind:
            wanted = _TOKEN_NAMES.get(kind, f"'{kind}'")
            raise _malformed(f"unexpected token: '{token.text}' (expected {wanted})")
        return token

    def parse(self) -> SoqlQuery:
        self._expect_keyword("SELECT")
        fields = [self._field()]
        while self._peek().kind == ",":
            self._next()
            fields.append(self._field())
        names = [f.name for f in fields]
        for name in names:
            if names.count(name) > 1:
                raise _malformed(f"duplicate field selected: {name}")
        self._expect_keyword("FROM")
        sobject = self._expect("word")
        if sobject.text.lower() != "lead":
            raise RequestRejectedError(
                400, "INVALID_TYPE", f"sObject type '{sobject.text}' is not supported."
            )
        where = self._condition() if self._keyword("WHERE") else None
        order_by: list[tuple[LeadField, bool, bool]] = []
        if self._keyword("ORDER"):
            self._expect_keyword("BY")
            order_by.append(self._order_item())
            while self._peek().kind == ",":
                self._next()
                order_by.append(self._order_item())
        limit = self._integer() if self._keyword("LIMIT") else None
        offset = self._integer() if self._keyword("OFFSET") else 0
        if offset > SOQL_MAX_OFFSET:
            raise _malformed(f"maximum SOQL offset allowed is {SOQL_MAX_OFFSET}")
        if self._peek().kind != "end":
            raise _malformed(f"unexpected token: '{self._peek().text}'")
        return SoqlQuery(tuple(fields), where, tuple(order_by), limit, offset)

    def _field(self) -> LeadField:
        token = self._expect("word")
        if self._peek().kind == "(":
            raise _malformed(f"functions such as {token.text}() are not modelled by the simulator")
        if "." in token.text:
            raise RequestRejectedError(
                400, "INVALID_FIELD", f"relationship fields ({token.text}) are not modelled"
            )
        spec = self._schema.field(token.text)
        if spec is None:
            raise RequestRejectedError(
                400,
                "INVALID_FIELD",
                f"No such column '{token.text}' on entity 'Lead'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name.",
            )
        return spec

    def _integer(self) -> int:
        token = self._expect("num")
        value = token.value
        if not isinstance(value, Decimal) or value != value.to_integral_value() or value < 0:
            raise _malformed(f"expected a non-negative integer, found '{token.text}'")
        return int(value)

    def _order_item(self) -> tuple[LeadField, bool, bool]:
        spec = self._field()
        descending = self._keyword("ASC", "DESC") == "DESC"
        nulls_first = not descending
        if self._keyword("NULLS"):
            nulls_first = self._keyword("FIRST", "LAST") == "FIRST"
        return spec, descending, nulls_first

    def _condition(self) -> Predicate:
        parts = [self._factor()]
        joiner: str | None = None
        while (word := self._keyword("AND", "OR")) is not None:
            if joiner is not None and word != joiner:
                raise _malformed(
                    f"unexpected token: '{word}' (mixing AND and OR needs parentheses)"
                )
            joiner = word
            parts.append(self._factor())
        if joiner is None:
            return parts[0]
        if joiner == "OR":
            return lambda record: any(p(record) for p in parts)
        return lambda record: all(p(record) for p in parts)

    def _factor(self) -> Predicate:
        if self._keyword("NOT"):
            inner = self._factor()
            return lambda record: not inner(record)
        if self._peek().kind == "(":
            self._next()
            inner = self._condition()
            self._expect(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Predicate:
        spec = self._field()
        if self._keyword("IN"):
            return self._in(spec, negate=False)
        if self._keyword("NOT"):
            self._expect_keyword("IN")
            return self._in(spec, negate=True)
        if self._keyword("LIKE"):
            if spec.type not in TEXT_TYPES:
                raise _malformed(f"LIKE is only valid on text fields, not {spec.name}")
            token = self._expect("str")
            return _like(spec, str(token.value))
        op = self._expect("op").text
        literal = self._literal(spec)
        if literal is None and op not in ("=", "!=", "<>"):
            raise _malformed(f"null can only be compared with = or != ({spec.name} {op} null)")
        return _compare(spec, op, literal)

    def _in(self, spec: LeadField, *, negate: bool) -> Predicate:
        self._expect("(")
        values = [self._literal(spec)]
        while self._peek().kind == ",":
            self._next()
            values.append(self._literal(spec))
        self._expect(")")
        wanted = {_sort_key(spec, v) for v in values}
        name = spec.name
        if negate:
            return lambda record: _sort_key(spec, record.get(name)) not in wanted
        return lambda record: _sort_key(spec, record.get(name)) in wanted

    def _literal(self, spec: LeadField) -> Any:
        token = self._next()
        if token.kind == "word" and token.text.lower() == "null":
            return None
        expected = {"str": TEXT_TYPES, "num": NUMBER_TYPES, "dt": frozenset({"datetime"})}
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            if spec.type == "boolean":
                return token.text.lower() == "true"
        elif token.kind in expected and spec.type in expected[token.kind]:
            return parse_datetime(token.value) if token.kind == "dt" else token.value
        if token.kind not in ("str", "num", "dt", "word"):
            raise _malformed(f"unexpected token: '{token.text}'")
        quoted = spec.type in TEXT_TYPES
        raise RequestRejectedError(
            400,
            "INVALID_FIELD",
            f"value of filter criterion for field '{spec.name}' must be of type "
            f"{spec.soap_type.split(':')[1]} and should {'' if quoted else 'not '}"
            "be enclosed in quotes",
        )


def parse_soql(schema: LeadSchema, soql: str) -> SoqlQuery:
    """Parse ``soql`` against ``schema``; raises ``RequestRejectedError`` (``MALFORMED_QUERY``,
    ``INVALID_FIELD``, ``INVALID_TYPE``) with Salesforce's 400 semantics."""
    if len(soql) > SOQL_MAX_CHARS:
        raise _malformed(f"SOQL statements cannot be longer than {SOQL_MAX_CHARS} characters")
    return _SoqlParser(schema, soql).parse()
