"""The simulated org's Lead schema: field metadata, describe JSON, and value checks.

Two layers of checks mirror where real Salesforce fails a write
(docs/salesforce-api.md#row-and-request-errors):

- ``coerce_record``: deserialisation. An unknown field (``INVALID_FIELD``) or a value of the wrong
  JSON type (``"50k"`` for a currency: ``JSON_PARSER_ERROR``) fails the *whole request* with a
  400, which is why one bad number sinks every row of a Collections call.
- ``check_value``: per-record validation (``STRING_TOO_LONG``, ``INVALID_EMAIL_ADDRESS``,
  restricted picklists, numeric range). These fail one row and appear inside an HTTP 200.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
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
    """One field as the org's describe reports it (the attributes in
    docs/salesforce-api.md#describe)."""

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
            # crmbridge writes who approved a lead synced despite the rules (fields.yaml
            # exception_field).
            _text("CRMBridge_Exception__c", "crmbridge Exception", 255, custom=True),
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
