"""The simulated org's Lead schema: field metadata, describe JSON, and value checks.

Two layers of checks mirror where real Salesforce fails a write (api-contracts.md 4.3, 4.6):

- ``coerce_record``: deserialisation. An unknown field (``INVALID_FIELD``) or a value of the wrong
  JSON type (``"50k"`` for a currency: ``JSON_PARSER_ERROR``) fails the *whole request* with a
  400, which is why one bad number sinks every row of a Collections call.
- ``check_value``: per-record validation (``STRING_TOO_LONG``, ``INVALID_EMAIL_ADDRESS``,
  restricted picklists, numeric range). These fail one row and appear inside an HTTP 200.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

#: A value as stored in a simulated record (datetimes are kept as ISO-8601 strings).
Value = str | int | float | bool | None

KEY_PREFIX = "00Q"
EXTERNAL_ID_FIELD = "HubSpot_Contact_Id__c"

INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
    "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities", "Other",
)  # fmt: skip
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
DEFAULT_LEAD_STATUS = "Open - Not Contacted"
CONVERTED_LEAD_STATUS = "Closed - Converted"
RATINGS = ("Hot", "Warm", "Cold")

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
}
TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "picklist", "id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency"})


class RequestRejectedError(Exception):
    """A request-level failure: the HTTP status and the ``[{message, errorCode}]`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code}]


@dataclass(frozen=True)
class SfError:
    """One error about one record; ``statusCode`` inside Collections, ``errorCode`` elsewhere."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_row_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}

    def as_request_error(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}


@dataclass(frozen=True)
class LeadField:
    """One field as the org's describe reports it (the attributes of api-contracts.md 4.2)."""

    name: str
    label: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    case_sensitive: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    default_value: str | None = None
    restricted: bool = False
    precision: int = 0
    scale: int = 0
    digits: int = 0

    @property
    def required_on_create(self) -> bool:
        return (
            self.createable
            and not self.nillable
            and not self.defaulted_on_create
            and self.type != "boolean"
        )

    @property
    def soap_type(self) -> str:
        return _SOAP_TYPES.get(self.type, "xsd:string")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": self.soap_type,
            "length": self.length,
            "byteLength": self.length * 3,
            "digits": self.digits,
            "precision": self.precision,
            "scale": self.scale,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.defaulted_on_create,
            "defaultValue": self.default_value,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.id_lookup,
            "caseSensitive": self.case_sensitive,
            "custom": self.custom,
            "calculated": False,
            "filterable": self.type != "textarea",
            "sortable": self.type != "textarea",
            "picklistValues": [
                {
                    "value": value,
                    "label": value,
                    "active": True,
                    "defaultValue": value == self.default_value,
                    "validFor": None,
                }
                for value in self.picklist
            ],
            "restrictedPicklist": self.restricted,
            "referenceTo": ["Group", "User"] if self.type == "reference" else [],
            "relationshipName": "Owner" if self.type == "reference" else None,
        }


def _text(name: str, label: str, length: int, **kw: Any) -> LeadField:
    return LeadField(name=name, label=label, type=kw.pop("type", "string"), length=length, **kw)


def _picklist(
    name: str, values: Sequence[str], *, restricted: bool = False, default: str | None = None
) -> LeadField:
    return LeadField(
        name=name,
        label=name.replace("Lead", "Lead "),
        type="picklist",
        length=255,
        nillable=default is None,
        defaulted_on_create=default is not None,
        picklist=tuple(values),
        default_value=default,
        restricted=restricted,
    )


def _readonly(name: str, label: str, type_: str, length: int = 0) -> LeadField:
    return LeadField(
        name=name,
        label=label,
        type=type_,
        length=length,
        nillable=False,
        createable=False,
        updateable=False,
        defaulted_on_create=True,
        id_lookup=type_ == "id",
    )


class LeadSchema:
    """The Lead fields of one simulated org; field names resolve case-insensitively."""

    def __init__(
        self, *, restricted_status: bool = True, extra_statuses: Iterable[str] = ()
    ) -> None:
        statuses = tuple(dict.fromkeys((*LEAD_STATUSES, *extra_statuses)))
        fields = [
            _readonly("Id", "Lead ID", "id", 18),
            _text("LastName", "Last Name", 80, nillable=False),
            _text("FirstName", "First Name", 40),
            _text("Company", "Company", 255, nillable=False),
            _text("Title", "Title", 128),
            _text("Email", "Email", 80, type="email", id_lookup=True),
            _text("Phone", "Phone", 40, type="phone"),
            _text("Description", "Description", 32000, type="textarea"),
            _text("City", "City", 40),
            _text("State", "State/Province", 80),
            _text("PostalCode", "Zip/Postal Code", 20),
            _text("Country", "Country", 80),
            _picklist("LeadSource", LEAD_SOURCES),
            _picklist(
                "Status", statuses, restricted=restricted_status, default=DEFAULT_LEAD_STATUS
            ),
            _picklist("Rating", RATINGS),
            _picklist("Industry", INDUSTRIES),
            LeadField(name="NumberOfEmployees", label="Employees", type="int", digits=8),
            LeadField(name="AnnualRevenue", label="Annual Revenue", type="currency", precision=18),
            _readonly("IsConverted", "Converted", "boolean"),
            LeadField(
                name="OwnerId",
                label="Owner ID",
                type="reference",
                length=18,
                nillable=False,
                defaulted_on_create=True,
            ),
            _readonly("CreatedDate", "Created Date", "datetime"),
            _readonly("LastModifiedDate", "Last Modified Date", "datetime"),
            _text(
                EXTERNAL_ID_FIELD,
                "HubSpot Contact Id",
                64,
                external_id=True,
                unique=True,
                id_lookup=True,
                custom=True,
            ),
            LeadField(
                name="Budget__c",
                label="Budget",
                type="currency",
                precision=16,
                scale=2,
                custom=True,
            ),
            LeadField(
                name="Timeline_Days__c",
                label="Timeline (Days)",
                type="double",
                precision=18,
                custom=True,
            ),
            _text("Pain_Point__c", "Pain Point", 255, custom=True),
        ]
        self.fields: dict[str, LeadField] = {f.name: f for f in fields}
        self._by_lower = {f.name.lower(): f for f in fields}

    def field(self, name: str) -> LeadField | None:
        """The field called ``name`` (any case), or ``None``."""
        return self._by_lower.get(name.lower())

    def upsert_key(self, name: str) -> LeadField | None:
        """The field an upsert may match on: an External ID field, or a standard ``idLookup``
        field such as Email; ``Id`` itself is not modelled as a key."""
        spec = self.field(name)
        if spec is None or spec.name == "Id":
            return None
        return spec if spec.external_id or spec.id_lookup else None

    def describe(self, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/Lead"
        return {
            "name": "Lead",
            "label": "Lead",
            "labelPlural": "Leads",
            "keyPrefix": KEY_PREFIX,
            "custom": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "fields": [f.describe() for f in self.fields.values()],
            "childRelationships": [],
            "recordTypeInfos": [],
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def empty_record(self) -> dict[str, Value]:
        return dict.fromkeys(self.fields)


# --- request-level: deserialisation ------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise RequestRejectedError(400, "JSON_PARSER_ERROR", f"Unrecognized token '{name}'")


def parse_json_body(body: bytes) -> Any:
    """Decode a request body (floats as ``Decimal``); malformed JSON → 400 ``JSON_PARSER_ERROR``."""
    try:
        return json.loads(
            body.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestRejectedError(400, "JSON_PARSER_ERROR", f"Unexpected input: {exc}") from exc


_NUMERIC_TEXT = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _parser_error(spec: LeadField, token: str, shown: object) -> RequestRejectedError:
    kind = "currency" if spec.type == "currency" else spec.soap_type.split(":")[1].lower()
    return RequestRejectedError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {token} value {shown} "
        "or request may be missing a required field",
    )


def _coerce(spec: LeadField, value: Any) -> Value | Decimal:
    if value is None:
        return None
    if isinstance(value, dict | list):
        token = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"
        raise _parser_error(spec, token, "{" if isinstance(value, dict) else "[")
    if spec.type in TEXT_TYPES:
        if isinstance(value, bool):
            return "true" if value else "false"
        text = str(value)
        return text or None  # Salesforce stores "" as null
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        raise _parser_error(spec, "VALUE_STRING", value)
    if spec.type in NUMBER_TYPES:
        if isinstance(value, bool):
            raise _parser_error(spec, "VALUE_TRUE" if value else "VALUE_FALSE", value)
        if isinstance(value, str):
            if value == "":
                return None
            if not _NUMERIC_TEXT.fullmatch(value):
                raise _parser_error(spec, "VALUE_STRING", value)
            number = Decimal(value.strip())
        else:
            number = Decimal(value)
        if not number.is_finite():
            raise _parser_error(spec, "VALUE_STRING", value)
        if spec.type == "int":
            if number != number.to_integral_value():
                raise _parser_error(spec, "VALUE_NUMBER_FLOAT", value)
            return int(number)
        return number
    # datetime fields are read-only: the row check refuses them, keep the text
    return str(value)


def coerce_record(schema: LeadSchema, raw: Mapping[str, Any]) -> dict[str, Value | Decimal]:
    """Map JSON field names to canonical ones and JSON values to field types (``attributes``
    is dropped). Raises ``RequestRejectedError`` (``INVALID_FIELD``, ``JSON_PARSER_ERROR``)."""
    out: dict[str, Value | Decimal] = {}
    for name, value in raw.items():
        if name == "attributes":
            continue
        spec = schema.field(name)
        if spec is None:
            raise RequestRejectedError(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Lead"
            )
        out[spec.name] = _coerce(spec, value)
    return out


# --- row-level: validation ---------------------------------------------------------------

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = re.compile(
    rf"{_ATOM}(\.{_ATOM})*@([A-Za-z0-9]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}"
)


def is_valid_email(value: str, *, internationalization: bool) -> bool:
    """Salesforce-style syntax check; non-ASCII letters pass only with internationalization."""
    if internationalization:
        value = "".join("a" if ord(c) > 127 and c.isalnum() else c for c in value)
    return _EMAIL.fullmatch(value) is not None


def check_value(
    spec: LeadField, value: Value | Decimal, *, email_internationalization: bool
) -> tuple[Value, SfError | None]:
    """Validate one coerced value for storage; returns the value as stored and any row error."""
    if value is None:
        return None, None
    if isinstance(value, Decimal):
        return _check_number(spec, value)
    if isinstance(value, str) and spec.length and len(value) > spec.length:
        return value, SfError(
            "STRING_TOO_LONG",
            f"{spec.name}: data value too large: {value} (max length={spec.length})",
            (spec.name,),
        )
    if (
        spec.type == "email"
        and isinstance(value, str)
        and not is_valid_email(value, internationalization=email_internationalization)
    ):
        return value, SfError(
            "INVALID_EMAIL_ADDRESS", f"{spec.name}: invalid email address: {value}", (spec.name,)
        )
    if spec.type == "picklist" and spec.restricted and value not in spec.picklist:
        return value, SfError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{spec.name}: bad value for restricted picklist field: {value}",
            (spec.name,),
        )
    if spec.type == "int" and isinstance(value, int) and len(str(abs(value))) > spec.digits:
        return value, _out_of_range(spec, value)
    return value, None


def _check_number(spec: LeadField, value: Decimal) -> tuple[Value, SfError | None]:
    quantum = Decimal(1).scaleb(-spec.scale)
    try:
        rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None, _out_of_range(spec, value)
    integer_digits = len(str(abs(int(rounded)))) if int(rounded) else 0
    if integer_digits > spec.precision - spec.scale:
        return None, _out_of_range(spec, value)
    return float(rounded), None


def _out_of_range(spec: LeadField, value: object) -> SfError:
    return SfError(
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{spec.name}: value outside of valid range on numeric field: {value}",
        (spec.name,),
    )


# --- ids and timestamps ------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to_18(record_id: str) -> str:
    """The 18-character, case-insensitive-safe form of a 15-character id (18 stays as is)."""
    if len(record_id) != 15:
        return record_id
    suffix = ""
    for start in (0, 5, 10):
        chunk = record_id[start : start + 5]
        flags = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += _CHECKSUM[flags]
    return record_id + suffix


def make_id(prefix: str, pod: str, number: int) -> str:
    """A well-formed 18-character id: 3-char key prefix, 2-char pod, 10 base-62 digits."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return to_18(f"{prefix}{pod}{digits.rjust(10, '0')}")


def timestamp(now: dt.datetime) -> str:
    """Salesforce's datetime wire form: ``2024-05-01T12:00:00.000+0000``."""
    return (
        now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{now.microsecond // 1000:03d}+0000"
    )


# --- SOQL --------------------------------------------------------------------------------
# A deliberately small subset (api-contracts.md 4.5): SELECT f[, f] FROM Lead [WHERE …]
# [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]. WHERE takes comparisons
# (= != <> < <= > >=), [NOT] IN (…), LIKE, NOT, parentheses, and AND or OR (mixing them without
# parentheses is an error, as in SOQL). Anything else is refused with a message naming the
# simulator, never silently misread.

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
