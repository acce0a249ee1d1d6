"""The HubSpot simulator's data: an in-memory portal of contacts and its property definitions.

Holds :class:`HubSpotPortal` (contacts kept as a short history of versions, so search can lag behind
writes), :class:`PropertyDef` with the standard and custom contact properties and their enumeration
options, and :func:`render_contact`, the API shape of one contact. Nothing here speaks HTTP; the
simulator in :mod:`crmbridge.sandbox.hubspot` serves a portal and re-exports the public names.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crmbridge.sandbox._hubspot_search import SearchRow

FIRST_CONTACT_ID = 1001
#: Versions kept per contact so search can lag behind writes; more writes inside one lag window
#: than this make the contact briefly absent from search.
VERSIONS_KEPT = 8
SYSTEM_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
INDUSTRIES = (
    "MANUFACTURING", "MACHINERY", "LOGISTICS_AND_SUPPLY_CHAIN", "RETAIL", "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "AUTOMOTIVE", "FOOD_PRODUCTION",
    "ELECTRICAL_ELECTRONIC_MANUFACTURING", "CONSTRUCTION", "CHEMICALS", "WHOLESALE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES", "TRANSPORTATION_TRUCKING_RAILROAD",
)  # fmt: skip
LIFECYCLE_STAGES = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
    "customer", "evangelist", "other",
)  # fmt: skip
LEAD_STATUSES = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
    "CONNECTED", "BAD_TIMING",
)  # fmt: skip
#: HubSpot's "Original Source" (``hs_analytics_source``): set by HubSpot's analytics, read-only
#: over the API.
ANALYTICS_SOURCES = (
    ("ORGANIC_SEARCH", "Organic search"), ("PAID_SEARCH", "Paid search"),
    ("EMAIL_MARKETING", "Email marketing"), ("SOCIAL_MEDIA", "Organic social"),
    ("REFERRALS", "Referrals"), ("OTHER_CAMPAIGNS", "Other campaigns"),
    ("DIRECT_TRAFFIC", "Direct traffic"), ("OFFLINE", "Offline sources"),
    ("PAID_SOCIAL", "Paid social"),
)  # fmt: skip

PropertyValue = str | None


def iso_ms(epoch_ms: int) -> str:
    """HubSpot's datetime string: ISO-8601 UTC with milliseconds (``2024-09-11T13:27:39.356Z``)."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class PropertyDef:
    """One contact property definition, as ``GET /crm/v3/properties/contacts`` describes it."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group_name: str = "contactinformation"
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (internal value, label), in display order
    hubspot_defined: bool = True
    read_only: bool = False
    #: Read-only over the API, but HubSpot itself sets it (analytics): seeding may.
    set_by_hubspot: bool = False

    def to_api(self, display_order: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": label, "value": value, "displayOrder": index, "hidden": False}
                for index, (value, label) in enumerate(self.options)
            ],
            "displayOrder": display_order,
            "hubspotDefined": self.hubspot_defined,
            "hasUniqueValue": False,
            "calculated": False,
            "externalOptions": False,
            "hidden": False,
            "formField": not self.read_only,
            "archived": False,
            "createdAt": "2019-08-06T02:41:08.029Z",
            "updatedAt": "2024-01-15T09:00:00.000Z",
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }


def _enum(name: str, label: str, values: Sequence[str], labels: Sequence[str] = ()) -> PropertyDef:
    shown = labels or [value.replace("_", " ").title() for value in values]
    return PropertyDef(
        name, label, "enumeration", "select", options=tuple(zip(values, shown, strict=True))
    )


def _custom(name: str, label: str, field_type: str = "text") -> PropertyDef:
    return PropertyDef(
        name, label, field_type=field_type, group_name="lead_qualification", hubspot_defined=False
    )


STANDARD_PROPERTIES: tuple[PropertyDef, ...] = (
    PropertyDef("email", "Email"),
    PropertyDef("firstname", "First Name"),
    PropertyDef("lastname", "Last Name"),
    PropertyDef("phone", "Phone Number", field_type="phonenumber"),
    PropertyDef("mobilephone", "Mobile Phone Number", field_type="phonenumber"),
    PropertyDef("company", "Company Name"),
    PropertyDef("jobtitle", "Job Title"),
    PropertyDef("website", "Website URL"),
    PropertyDef("address", "Street Address"),
    PropertyDef("city", "City"),
    PropertyDef("state", "State/Region"),
    PropertyDef("zip", "Postal Code"),
    PropertyDef("country", "Country/Region"),
    PropertyDef("annualrevenue", "Annual Revenue"),
    PropertyDef("message", "Message", field_type="textarea"),
    _enum("industry", "Industry", INDUSTRIES),
    _enum(
        "lifecyclestage",
        "Lifecycle Stage",
        LIFECYCLE_STAGES,
        (
            "Subscriber",
            "Lead",
            "Marketing Qualified Lead",
            "Sales Qualified Lead",
            "Opportunity",
            "Customer",
            "Evangelist",
            "Other",
        ),
    ),
    _enum("hs_lead_status", "Lead Status", LEAD_STATUSES),
    PropertyDef("hs_object_id", "Record ID", "number", "number", read_only=True),
    PropertyDef("createdate", "Create Date", "datetime", "date", read_only=True),
    PropertyDef("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only=True),
    PropertyDef(
        "hs_analytics_source",
        "Original Source",
        "enumeration",
        "select",
        group_name="analyticsinformation",
        options=ANALYTICS_SOURCES,
        read_only=True,
        set_by_hubspot=True,
    ),
    _custom("budget", "Budget (USD)"),
    _custom("timeline_days", "Timeline (days)"),
    _custom("need", "Need", "textarea"),
    _custom("pain_point", "Pain point"),
)


@dataclass(frozen=True, slots=True)
class _Version:
    row: SearchRow  # the contact as this write left it (also what search matches against)
    archived_ms: int | None
    written_ms: int  # when the write happened: search sees it from written_ms + lag


@dataclass(slots=True)
class _Record:
    versions: list[_Version]

    @property
    def current(self) -> _Version:
        return self.versions[-1]

    def push(self, version: _Version) -> None:
        self.versions.append(version)
        del self.versions[:-VERSIONS_KEPT]


class HubSpotPortal:
    """In-memory contacts of one HubSpot portal; every method is thread-safe.

    Ids are numeric strings counting up from ``first_id``. Values are stored as strings or ``None``
    exactly as given (so ``""`` from an import stays ``""``); the HTTP write paths turn ``""`` into
    ``None`` (a clear). ``len(portal)`` counts archived contacts too.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int] | None = None,
        *,
        first_id: int = FIRST_CONTACT_ID,
        properties: Iterable[PropertyDef] = STANDARD_PROPERTIES,
    ) -> None:
        self.clock_ms: Callable[[], int] = clock_ms or _wall_clock_ms
        self._lock = threading.RLock()
        self._next_id = first_id
        self._records: dict[int, _Record] = {}
        self._ids: list[int] = []  # ascending
        self._schema: dict[str, PropertyDef] = {prop.name: prop for prop in properties}

    # --- schema -------------------------------------------------------------------------------
    def define_property(self, prop: PropertyDef) -> None:
        """Add (or replace) a property definition, as a portal admin would."""
        with self._lock:
            self._schema[prop.name] = prop

    @property
    def schema(self) -> dict[str, PropertyDef]:
        with self._lock:
            return dict(self._schema)

    def property_types(self) -> dict[str, str]:
        with self._lock:
            return {name: prop.type for name, prop in self._schema.items()}

    # --- writes -------------------------------------------------------------------------------
    def add_contact(
        self,
        properties: Mapping[str, object],
        *,
        id: str | None = None,
        modified_at_ms: int | None = None,
        created_at_ms: int | None = None,
        archived: bool = False,
    ) -> str:
        """Store a new contact and return its id.

        ``modified_at_ms`` defaults to the clock, ``created_at_ms`` to ``modified_at_ms``. Raises
        ``ValueError`` for an unknown or read-only property or a taken id.
        """
        with self._lock:
            now = self.clock_ms()
            num = self._next_id if id is None else int(id)
            if num in self._records:
                raise ValueError(f"contact {num} already exists")
            modified = now if modified_at_ms is None else modified_at_ms
            created = modified if created_at_ms is None else created_at_ms
            row = SearchRow(str(num), num, created, modified, self._clean(properties))
            self._records[num] = _Record([_Version(row, modified if archived else None, modified)])
            if not self._ids or num > self._ids[-1]:
                self._ids.append(num)
            else:
                bisect.insort(self._ids, num)
            self._next_id = max(self._next_id, num + 1)
            return row.id

    def update_contact(
        self,
        id: str,
        properties: Mapping[str, object],
        *,
        modified_at_ms: int | None = None,
    ) -> None:
        """Merge ``properties`` in and bump ``lastmodifieddate``; ``KeyError`` if unknown."""
        with self._lock:
            record = self._record(id)
            now = self.clock_ms()
            old = record.current
            merged = {**old.row.properties, **self._clean(properties)}
            modified = now if modified_at_ms is None else modified_at_ms
            row = SearchRow(old.row.id, old.row.num, old.row.created_ms, modified, merged)
            record.push(_Version(row, old.archived_ms, modified))

    def archive_contact(self, id: str) -> None:
        """Archive the contact (idempotent); ``KeyError`` if unknown."""
        with self._lock:
            record = self._record(id)
            old = record.current
            if old.archived_ms is None:
                now = self.clock_ms()
                record.push(_Version(old.row, now, now))

    def _record(self, id: str) -> _Record:
        record = self._records.get(int(id)) if str(id).isdigit() else None
        if record is None:
            raise KeyError(id)
        return record

    def _clean(self, properties: Mapping[str, object]) -> dict[str, PropertyValue]:
        cleaned: dict[str, PropertyValue] = {}
        for name, value in properties.items():
            prop = self._schema.get(name)
            if prop is None or (prop.read_only and not prop.set_by_hubspot):
                raise ValueError(f"unknown or read-only contact property {name!r}")
            if value is None:
                cleaned[name] = None
            elif isinstance(value, bool):
                cleaned[name] = "true" if value else "false"
            else:
                cleaned[name] = str(value)
        return cleaned

    # --- reads --------------------------------------------------------------------------------
    def get(self, id: str) -> dict[str, Any] | None:
        """The stored contact in API shape with every stored property, or ``None``."""
        with self._lock:
            try:
                version = self._record(id).current
            except KeyError:
                return None
            names = sorted({*version.row.properties, *SYSTEM_PROPERTIES})
            return render_contact(version.row, version.archived_ms, names)

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every contact (archived ones included), by id, in id order."""
        with self._lock:
            return {str(num): record for num in self._ids if (record := self.get(str(num)))}

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __contains__(self, id: object) -> bool:
        with self._lock:
            return str(id).isdigit() and int(str(id)) in self._records

    def search_rows(self, *, visible_at_ms: int | None = None) -> list[SearchRow]:
        """Unarchived contacts as the search index sees them at ``visible_at_ms`` (``None``: now).

        A contact whose every kept version was written after ``visible_at_ms`` is absent.
        """
        with self._lock:
            rows: list[SearchRow] = []
            for num in self._ids:
                version = self._visible(self._records[num], visible_at_ms)
                if version is not None and version.archived_ms is None:
                    rows.append(version.row)
            return rows

    @staticmethod
    def _visible(record: _Record, at_ms: int | None) -> _Version | None:
        if at_ms is None:
            return record.current
        for version in reversed(record.versions):
            if version.written_ms <= at_ms:
                return version
        return None

    def page(
        self, after: int, limit: int, *, archived: bool
    ) -> tuple[list[tuple[SearchRow, int | None]], int | None]:
        """Up to ``limit`` contacts with id >= ``after`` (archived or not, as asked), next id."""
        with self._lock:
            found: list[tuple[SearchRow, int | None]] = []
            for index in range(bisect.bisect_left(self._ids, after), len(self._ids)):
                num = self._ids[index]
                version = self._records[num].current
                if (version.archived_ms is not None) is not archived:
                    continue
                if len(found) == limit:
                    return found, num
                found.append((version.row, version.archived_ms))
            return found, None

    def lookup(
        self, key: str, *, archived: bool = False, id_property: str | None = None
    ) -> tuple[SearchRow, int | None] | None:
        """The current version of a contact by id (or by e-mail), if its archived state matches."""
        with self._lock:
            if id_property == "email":
                wanted = key.strip().lower()
                candidates = [
                    r.current
                    for r in self._records.values()
                    if (r.current.row.properties.get("email") or "").lower() == wanted
                ]
            else:
                record = self._records.get(int(key)) if key.isdigit() else None
                candidates = [record.current] if record else []
            for version in candidates:
                if (version.archived_ms is not None) is archived:
                    return version.row, version.archived_ms
            return None


def render_contact(row: SearchRow, archived_ms: int | None, names: Iterable[str]) -> dict[str, Any]:
    """A contact as the API returns it: the named properties (``None`` when unset) plus metadata."""
    properties: dict[str, PropertyValue] = {}
    for name in names:
        if name == "hs_object_id":
            properties[name] = row.id
        elif name == "createdate":
            properties[name] = iso_ms(row.created_ms)
        elif name == "lastmodifieddate":
            properties[name] = iso_ms(row.modified_ms)
        else:
            properties[name] = row.properties.get(name)
    body: dict[str, Any] = {
        "id": row.id,
        "properties": properties,
        "createdAt": iso_ms(row.created_ms),
        "updatedAt": iso_ms(row.modified_ms),
        "archived": archived_ms is not None,
    }
    if archived_ms is not None:
        body["archivedAt"] = iso_ms(archived_ms)
    return body
