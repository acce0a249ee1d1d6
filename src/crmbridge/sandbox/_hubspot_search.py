"""Search requests for the HubSpot simulator: validation, filtering, ordering
(docs/hubspot-api.md#search-filters).

Pure functions over :class:`SearchRow` values. The simulator decides which version of each contact
the search index can see (index lag, archived records) and hands the rows in; this module turns a
request body into a :class:`SearchQuery` (or raises :class:`SearchRequestError`, answered as a 400
``VALIDATION_ERROR``) and runs it.

Typing rules, as documented for HubSpot:
- ``number`` properties compare numerically; ``datetime``/``date`` ones compare as epoch
  milliseconds, and a filter value may be epoch-ms digits or an ISO-8601 string.
- ``string`` properties compare case-insensitively. For string ``IN``/``NOT_IN`` the stored value is
  lower-cased and compared with the values *as sent*, so an upper-case value matches nothing (the
  documented "values must be lowercase", answered silently rather than with a 400).
- ``enumeration`` and ``bool`` properties compare case-sensitively.
- A filter on a property the portal does not define (``hs_lastmodifieddate`` on contacts) matches
  no record and raises nothing.
- ``NEQ``, ``NOT_IN`` and ``NOT_CONTAINS_TOKEN`` also match records without a value (unverified
  on real HubSpot; chosen so that a client never relies on either answer by accident).
- ``CONTAINS_TOKEN`` matches the whole value or any word of it; ``*`` is the only wildcard.
- Sorting puts records without a value last in either direction; equal sort values come out in a
  fresh random order on every request when an RNG is given, so offset paging through a tie skips or
  repeats records exactly as it can on the real service.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SEARCH_LIMIT_DEFAULT = 10
SEARCH_LIMIT_MAX = 200
SEARCH_RESULT_CAP = 10_000
SEARCH_BODY_MAX_CHARS = 3_000
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS_TOTAL = 18
#: The message HubSpot is reported to send when a page would reach past the 10,000th result.
RESULT_CAP_MESSAGE = "There was a problem with the request."

OPERATORS = frozenset(
    {
        "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
        "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
    }
)  # fmt: skip
#: Properties the free-text ``query`` looks in (HubSpot's "default searchable properties").
QUERY_PROPERTIES = ("firstname", "lastname", "email", "phone", "company")
NUMERIC_TYPES = frozenset({"number", "datetime", "date"})
CASE_SENSITIVE_TYPES = frozenset({"enumeration", "bool"})

Comparable = int | float | str
RowKey = Callable[["SearchRow"], Comparable | None]
Predicate = Callable[["SearchRow"], bool]


class SearchRequestError(ValueError):
    """The search body breaks a documented limit or is malformed: HubSpot answers 400."""


@dataclass(frozen=True, slots=True)
class SearchRow:
    """One contact as the search index sees it (user properties only; system ones are fields)."""

    id: str
    num: int
    created_ms: int
    modified_ms: int
    properties: Mapping[str, str | None]

    def raw(self, name: str) -> str | None:
        """The stored string of ``name`` (system properties rendered as HubSpot stores them)."""
        if name == "hs_object_id":
            return self.id
        if name == "createdate":
            return str(self.created_ms)
        if name == "lastmodifieddate":
            return str(self.modified_ms)
        return self.properties.get(name)


@dataclass(frozen=True)
class SortSpec:
    property_name: str
    descending: bool


@dataclass(frozen=True)
class SearchQuery:
    """A validated search request, ready to run against rows."""

    groups: tuple[tuple[Predicate, ...], ...]
    sort: SortSpec | None
    limit: int
    after: int
    properties: tuple[str, ...] | None
    text: str | None
    property_types: Mapping[str, str]

    def matches(self, row: SearchRow) -> bool:
        """True when ``row`` passes the text query and any filter group (groups OR, filters AND)."""
        if self.text is not None and not _matches_text(row, self.text):
            return False
        if not self.groups:
            return True
        return any(all(predicate(row) for predicate in group) for group in self.groups)

    def run(
        self, rows: Iterable[SearchRow], rng: random.Random | None
    ) -> tuple[int, list[SearchRow], str | None]:
        """Return ``(total, page, next_after)``; ``next_after`` is ``None`` on the last page.

        The page before the 10,000 cap still offers ``after="10000"`` (as HubSpot does); following
        it is refused when the next request is parsed.
        """
        matched = [row for row in rows if self.matches(row)]
        ordered = _order(matched, self.sort, self.property_types, rng)
        end = self.after + self.limit
        next_after = str(end) if end < len(ordered) else None
        return len(ordered), ordered[self.after : end], next_after


def parse_search_request(text: str, property_types: Mapping[str, str]) -> SearchQuery:
    """Validate a raw search body against HubSpot's documented limits.

    Raises:
        SearchRequestError: body too long or not JSON, too many filters or sorts, a bad operator or
            value, ``limit`` above 200, or ``after + limit`` past the 10,000-result cap.
    """
    if len(text) > SEARCH_BODY_MAX_CHARS:
        raise SearchRequestError(
            f"The request body is {len(text)} characters long; the maximum is "
            f"{SEARCH_BODY_MAX_CHARS}."
        )
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise SearchRequestError(f"Invalid input JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise SearchRequestError("Invalid input JSON: expected an object.")

    limit = _parse_int(body.get("limit"), "limit", SEARCH_LIMIT_DEFAULT)
    if not 1 <= limit <= SEARCH_LIMIT_MAX:  # 0 is refused too: whether HubSpot allows it is unknown
        raise SearchRequestError(f"limit must be between 1 and {SEARCH_LIMIT_MAX}, got {limit}.")
    after = _parse_int(body.get("after"), "after", 0)
    if after < 0:
        raise SearchRequestError(f"after must not be negative, got {after}.")
    if after + limit > SEARCH_RESULT_CAP:
        raise SearchRequestError(RESULT_CAP_MESSAGE)

    groups = _parse_groups(body.get("filterGroups") or [], property_types)
    sort = _parse_sorts(body.get("sorts") or [])
    properties = _parse_names(body.get("properties"))
    query = body.get("query")
    text_query = query.strip().lower() if isinstance(query, str) and query.strip() else None
    return SearchQuery(groups, sort, limit, after, properties, text_query, property_types)


def _parse_int(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise SearchRequestError(f"{name} must be an integer, got {value!r}.")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise SearchRequestError(f"{name} must be an integer, got {value!r}.") from exc


def _parse_names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise SearchRequestError("properties must be a list of property names.")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _parse_sorts(sorts: Any) -> SortSpec | None:
    if not isinstance(sorts, list):
        raise SearchRequestError("sorts must be a list.")
    if len(sorts) > 1:
        raise SearchRequestError("Only one sort is allowed per search request.")
    for item in sorts:
        # The client types sorts as list[str]; HubSpot silently ignores a string sort (reported).
        if not isinstance(item, dict):
            continue
        name = item.get("propertyName")
        direction = str(item.get("direction") or "ASCENDING").upper()
        if not isinstance(name, str) or not name:
            raise SearchRequestError("A sort needs a propertyName.")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise SearchRequestError(f"Unknown sort direction {direction!r}.")
        return SortSpec(name, descending=direction == "DESCENDING")
    return None


def _parse_groups(
    groups: Any, property_types: Mapping[str, str]
) -> tuple[tuple[Predicate, ...], ...]:
    if not isinstance(groups, list):
        raise SearchRequestError("filterGroups must be a list.")
    if len(groups) > MAX_FILTER_GROUPS:
        raise SearchRequestError(
            f"Too many filter groups: {len(groups)} (maximum {MAX_FILTER_GROUPS})."
        )
    parsed: list[tuple[Predicate, ...]] = []
    total = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchRequestError("Each filter group needs a list of filters.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchRequestError(
                f"Too many filters in a group: {len(filters)} (maximum {MAX_FILTERS_PER_GROUP})."
            )
        total += len(filters)
        if total > MAX_FILTERS_TOTAL:
            raise SearchRequestError(f"Too many filters: more than {MAX_FILTERS_TOTAL} in total.")
        parsed.append(tuple(_compile_filter(item, property_types) for item in filters))
    return tuple(parsed)


def _compile_filter(spec: Any, property_types: Mapping[str, str]) -> Predicate:
    if not isinstance(spec, dict):
        raise SearchRequestError("A filter must be an object.")
    name = spec.get("propertyName")
    operator = str(spec.get("operator") or "EQ").upper()
    if not isinstance(name, str) or not name:
        raise SearchRequestError("A filter needs a propertyName.")
    if operator not in OPERATORS:
        raise SearchRequestError(f"Unknown filter operator {operator!r}.")
    if name not in property_types:
        return _never  # hs_lastmodifieddate on contacts: matches nothing, no error (reported)
    ptype = property_types[name]
    key = _row_key(name, ptype)

    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        wanted = operator == "HAS_PROPERTY"
        return lambda row: (row.raw(name) not in (None, "")) is wanted
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = _token_pattern(_require(spec, "value"))
        if operator == "CONTAINS_TOKEN":
            return lambda row: _contains_token(row.raw(name), pattern)
        return lambda row: not _contains_token(row.raw(name), pattern)
    if operator in ("IN", "NOT_IN"):
        raw_values = spec.get("values")
        if not isinstance(raw_values, list) or not raw_values:
            raise SearchRequestError(f"{operator} needs a non-empty list of values.")
        if ptype in NUMERIC_TYPES:
            values: frozenset[Comparable] = frozenset(
                _filter_value(str(v), ptype, name) for v in raw_values
            )
        else:
            values = frozenset(str(v) for v in raw_values)  # as sent: upper case never matches
        if operator == "IN":
            return lambda row: (k := key(row)) is not None and k in values
        return lambda row: (k := key(row)) is None or k not in values
    if operator == "BETWEEN":
        low = _filter_value(_require(spec, "value"), ptype, name)
        high = _filter_value(_require(spec, "highValue"), ptype, name)
        return lambda row: (k := key(row)) is not None and _le(low, k) and _le(k, high)

    value = _filter_value(_require(spec, "value"), ptype, name)
    comparisons: dict[str, Callable[[Comparable, Comparable], bool]] = {
        "EQ": lambda a, b: a == b,
        "LT": _lt,
        "LTE": _le,
        "GT": lambda a, b: _lt(b, a),
        "GTE": lambda a, b: _le(b, a),
    }
    if operator == "NEQ":
        return lambda row: (k := key(row)) is None or k != value
    compare = comparisons[operator]
    return lambda row: (k := key(row)) is not None and compare(k, value)


def _never(_row: SearchRow) -> bool:
    return False


def _lt(a: Comparable, b: Comparable) -> bool:
    return a < b  # type: ignore[operator]  # both sides share the property's type


def _le(a: Comparable, b: Comparable) -> bool:
    return a <= b  # type: ignore[operator]  # both sides share the property's type


def _require(spec: Mapping[str, Any], field: str) -> str:
    value = spec.get(field)
    if value is None:
        raise SearchRequestError(f"Operator {spec.get('operator')} needs {field}.")
    return str(value)


def _filter_value(value: str, ptype: str, name: str) -> Comparable:
    if ptype in ("datetime", "date"):
        millis = parse_millis(value)
        if millis is None:
            raise SearchRequestError(f"{value!r} is not a valid date/time for {name}.")
        return millis
    if ptype == "number":
        number = _parse_number(value)
        if number is None:
            raise SearchRequestError(f"{value!r} is not a valid number for {name}.")
        return number
    return value if ptype in CASE_SENSITIVE_TYPES else value.lower()


def parse_millis(value: str) -> int | None:
    """Epoch milliseconds from digits or an ISO-8601 string (``Z`` allowed); ``None`` if neither."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _parse_number(value: str) -> int | float | None:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return None


def _row_key(name: str, ptype: str) -> RowKey:
    """How a row's value of ``name`` compares: system fields directly, others parsed by type."""
    if name == "hs_object_id":
        return lambda row: row.num
    if name == "createdate":
        return lambda row: row.created_ms
    if name == "lastmodifieddate":
        return lambda row: row.modified_ms

    def key(row: SearchRow) -> Comparable | None:
        raw = row.properties.get(name)
        if raw is None or raw == "":
            return None
        if ptype in ("datetime", "date"):
            return parse_millis(raw)
        if ptype == "number":
            return _parse_number(raw)
        return raw if ptype in CASE_SENSITIVE_TYPES else raw.lower()

    return key


def _token_pattern(value: str) -> re.Pattern[str]:
    parts = (re.escape(part) for part in value.lower().split("*"))
    return re.compile(".*".join(parts), re.DOTALL)


def _contains_token(raw: str | None, pattern: re.Pattern[str]) -> bool:
    if not raw:
        return False
    lowered = raw.lower()
    if pattern.fullmatch(lowered):
        return True
    return any(pattern.fullmatch(token) for token in re.split(r"[^\w@.+-]+", lowered) if token)


def _matches_text(row: SearchRow, text: str) -> bool:
    words: list[str] = []
    for name in QUERY_PROPERTIES:
        value = row.properties.get(name)
        if value:
            words.extend(re.split(r"[\s,;]+", value.lower()))
    return all(any(word.startswith(term) for word in words) for term in text.split())


def _order(
    rows: list[SearchRow],
    sort: SortSpec | None,
    property_types: Mapping[str, str],
    rng: random.Random | None,
) -> list[SearchRow]:
    """Sort by the one sort (default: oldest created first); ties random per call if ``rng``."""
    if rng is not None:
        rng.shuffle(rows)
    else:
        rows.sort(key=lambda row: row.num)
    if sort is None:
        rows.sort(key=lambda row: row.created_ms)  # stable: keeps the tie order chosen above
        return rows
    key = _row_key(sort.property_name, property_types.get(sort.property_name, "string"))
    present: list[tuple[Comparable, SearchRow]] = []
    missing: list[SearchRow] = []
    for row in rows:
        value = key(row)
        if value is None:
            missing.append(row)
        else:
            present.append((value, row))
    # reverse=True keeps equal elements in their original order, so ties stay shuffled either way
    present.sort(key=lambda pair: pair[0], reverse=sort.descending)
    return [row for _, row in present] + missing
