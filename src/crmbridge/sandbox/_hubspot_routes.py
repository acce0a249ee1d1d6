"""The HubSpot simulator's route handlers: contacts (list, read, search, batch, patch), properties.

Holds :class:`ContactRoutes`, a mixin of one handler per route plus the request parsing and write
validation they share, over the state that :class:`~crmbridge.sandbox.hubspot.HubSpotSimulator`
sets up (portal, index lag, tie shuffling). Authentication, rate limits, fault injection and
dispatch stay in the simulator; each handler returns a ``Response`` or raises :class:`ApiError`.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from crmbridge.sandbox._hubspot_errors import ApiError, bad_request, error_body, not_found
from crmbridge.sandbox._hubspot_portal import (
    SYSTEM_PROPERTIES,
    HubSpotPortal,
    PropertyValue,
    iso_ms,
    render_contact,
)
from crmbridge.sandbox._hubspot_search import SearchRequestError, SearchRow, parse_search_request
from crmbridge.sandbox._server import Request, Response

LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100
BATCH_INPUT_MAX = 100
BATCH_INPUT_MAX_WITH_HISTORY = 50
CONTACTS_PATH = "/crm/v3/objects/contacts"
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)


def _query_names(query: Mapping[str, list[str]], key: str) -> list[str] | None:
    """A list parameter sent repeated (``?p=a&p=b``, the client) or comma-separated (the docs)."""
    if key not in query:
        return None
    return [name.strip() for value in query[key] for name in value.split(",") if name.strip()]


def _query_flag(query: Mapping[str, list[str]], key: str) -> bool:
    values = query.get(key) or [""]
    return values[-1].strip().lower() == "true"  # the client sends "True"


def _query_int(query: Mapping[str, list[str]], key: str, default: int) -> int:
    values = query.get(key)
    if not values or not values[-1].strip():
        return default
    try:
        return int(values[-1])
    except ValueError as exc:
        raise bad_request(f"Invalid value for {key}: {values[-1]!r}") from exc


def _invalid_value(name: str, error: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


class ContactRoutes:
    """Route handlers and their helpers, mixed into :class:`HubSpotSimulator`, which sets the
    attributes below and provides ``base_url``."""

    portal: HubSpotPortal
    search_index_lag_ms: int
    shuffle_ties: bool
    _rng: random.Random
    _rng_lock: threading.Lock

    @property
    def base_url(self) -> str:
        raise NotImplementedError  # the simulator's, once started

    # --- helpers ------------------------------------------------------------------------------
    def _names(self, requested: Sequence[str] | None) -> list[str]:
        """Properties to render: the defaults, or the known requested ones plus the system three."""
        if not requested:
            return list(DEFAULT_PROPERTIES)
        schema = self.portal.schema
        return sorted({*(name for name in requested if name in schema), *SYSTEM_PROPERTIES})

    def _child_rng(self) -> random.Random | None:
        if not self.shuffle_ties:
            return None
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(f"Invalid input JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: expected an object.")
        return body

    def _validate_write(
        self, properties: Any, problems: list[dict[str, Any]]
    ) -> dict[str, PropertyValue]:
        """Check values against the schema (appending to ``problems``); ``""`` becomes a clear."""
        if not isinstance(properties, dict):
            raise bad_request("properties must be an object of property names to values.")
        schema = self.portal.schema
        cleaned: dict[str, PropertyValue] = {}
        for name, value in properties.items():
            prop = schema.get(name)
            if prop is None:
                problems.append(
                    _invalid_value(
                        name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                )
                continue
            if prop.read_only:
                problems.append(
                    _invalid_value(
                        name,
                        "READ_ONLY_VALUE",
                        f"{name} is a read only property; its value cannot be set.",
                    )
                )
                continue
            if isinstance(value, dict | list):
                problems.append(
                    _invalid_value(
                        name, "INVALID_PROPERTY_VALUE", f"{value!r} is not a valid value for {name}"
                    )
                )
                continue
            text = (
                None
                if value in (None, "")
                else ("true" if value is True else "false" if value is False else str(value))
            )
            options = [option for option, _ in prop.options]
            if text is not None and prop.type == "enumeration" and text not in options:
                message = f"{text} was not one of the allowed options: [{', '.join(options)}]"
                problems.append(_invalid_value(name, "INVALID_OPTION", message))
            cleaned[name] = text
        return cleaned

    def _apply(self, row: SearchRow, changes: dict[str, PropertyValue]) -> dict[str, Any]:
        """Write validated changes (lifecycle stage only forward) and render the written names."""
        written = dict(changes)
        stage, current = written.get("lifecyclestage"), row.properties.get("lifecyclestage")
        lifecycle = self.portal.schema.get("lifecyclestage")
        order = [value for value, _ in lifecycle.options] if lifecycle else []
        if stage in order and current in order and order.index(stage) < order.index(current):
            del written["lifecyclestage"]  # the API moves lifecyclestage forward only
        self.portal.update_contact(row.id, written)
        fresh = self.portal.lookup(row.id)
        assert fresh is not None  # contacts are never deleted
        return render_contact(fresh[0], None, sorted({*changes, *SYSTEM_PROPERTIES}))

    def _batch_response(self, results: list[dict[str, Any]], missing: list[str]) -> Response:
        stamp = iso_ms(self.portal.clock_ms())
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if not missing:
            return Response(200, body)
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return Response(207, body)

    @staticmethod
    def _check_batch_size(inputs: Any, limit: int) -> list[Any]:
        if not isinstance(inputs, list):
            raise bad_request("inputs must be a list.")
        if len(inputs) > limit:
            raise bad_request(
                f"The maximum number of inputs supported in a batch is {limit}. "
                f"Received {len(inputs)} inputs."
            )
        if not all(isinstance(item, dict) and item.get("id") is not None for item in inputs):
            raise bad_request("Every input needs an id.")
        return inputs

    @staticmethod
    def _id_property(value: Any) -> str | None:
        if value in (None, "", "hs_object_id"):
            return None
        if value != "email":
            raise bad_request(f"Unable to find unique property {value}")
        return "email"

    # --- routes -------------------------------------------------------------------------------
    def _list(self, request: Request, _match: re.Match[str]) -> Response:
        limit = _query_int(request.query, "limit", LIST_LIMIT_DEFAULT)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise bad_request(f"limit must be between 1 and {LIST_LIMIT_MAX}, got {limit}.")
        after = _query_int(request.query, "after", 0)
        archived = _query_flag(request.query, "archived")
        names = self._names(_query_names(request.query, "properties"))
        page, next_id = self.portal.page(after, limit, archived=archived)
        body: dict[str, Any] = {"results": [render_contact(row, at, names) for row, at in page]}
        if next_id is not None:
            link = f"{self.base_url}{CONTACTS_PATH}?after={next_id}&limit={limit}"
            body["paging"] = {"next": {"after": str(next_id), "link": link}}
        return Response(200, body)

    def _get_one(self, request: Request, match: re.Match[str]) -> Response:
        key = match["key"]
        id_property = self._id_property(request.query.get("idProperty", [None])[-1])
        found = self.portal.lookup(
            key, archived=_query_flag(request.query, "archived"), id_property=id_property
        )
        if found is None:
            raise not_found(key)
        return Response(
            200, render_contact(*found, self._names(_query_names(request.query, "properties")))
        )

    def _search(self, request: Request, _match: re.Match[str]) -> Response:
        try:
            query = parse_search_request(request.body.decode("utf-8"), self.portal.property_types())
        except (SearchRequestError, UnicodeDecodeError) as exc:
            raise bad_request(str(exc)) from exc
        visible_at = (
            self.portal.clock_ms() - self.search_index_lag_ms
            if self.search_index_lag_ms > 0
            else None
        )
        rows = self.portal.search_rows(visible_at_ms=visible_at)
        total, page, next_after = query.run(rows, self._child_rng())
        names = self._names(query.properties)
        body: dict[str, Any] = {
            "total": total,
            "results": [render_contact(row, None, names) for row in page],
        }
        if next_after is not None:
            body["paging"] = {"next": {"after": next_after}}
        return Response(200, body)

    def _batch_read(self, request: Request, _match: re.Match[str]) -> Response:
        body = self._json_body(request)
        limit = (
            BATCH_INPUT_MAX_WITH_HISTORY if body.get("propertiesWithHistory") else BATCH_INPUT_MAX
        )
        inputs = self._check_batch_size(body.get("inputs"), limit)
        id_property = self._id_property(body.get("idProperty"))
        archived = _query_flag(request.query, "archived")
        requested = body.get("properties")
        names = self._names(requested if isinstance(requested, list) else None)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for key in dict.fromkeys(str(item["id"]) for item in inputs):  # duplicates read once
            found = self.portal.lookup(key, archived=archived, id_property=id_property)
            if found is None:
                missing.append(key)
            else:
                results.append(render_contact(*found, names))
        rng = self._child_rng()
        if rng is not None:
            rng.shuffle(results)  # result order is unverified: clients must map by id
        return self._batch_response(results, missing)

    def _batch_update(self, request: Request, _match: re.Match[str]) -> Response:
        inputs = self._check_batch_size(self._json_body(request).get("inputs"), BATCH_INPUT_MAX)
        keys = [str(item["id"]) for item in inputs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise bad_request(
                f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be unique"
            )
        problems: list[dict[str, Any]] = []
        changes = [self._validate_write(item.get("properties"), problems) for item in inputs]
        if problems:
            raise bad_request(f"Property values were not valid: {json.dumps(problems)}")
        # Resolve every idProperty before writing anything: a bad one fails the whole call.
        id_properties = [self._id_property(item.get("idProperty")) for item in inputs]
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for key, change, id_property in zip(keys, changes, id_properties, strict=True):
            if id_property is None and not key.isdigit():
                continue  # an e-mail as id without idProperty is a silent no-op (reported)
            found = self.portal.lookup(key, id_property=id_property)
            if found is None:
                missing.append(key)
            else:
                results.append(self._apply(found[0], change))
        return self._batch_response(results, missing)

    def _patch(self, request: Request, match: re.Match[str]) -> Response:
        key = match["key"]
        id_property = self._id_property(request.query.get("idProperty", [None])[-1])
        problems: list[dict[str, Any]] = []
        change = self._validate_write(self._json_body(request).get("properties"), problems)
        if problems:
            raise bad_request(f"Property values were not valid: {json.dumps(problems)}")
        found = self.portal.lookup(key, id_property=id_property)
        if found is None:
            raise not_found(key)
        return Response(200, self._apply(found[0], change))

    def _properties(self, request: Request, _match: re.Match[str]) -> Response:
        if _query_flag(request.query, "archived"):
            return Response(200, {"results": []})
        props = self.portal.schema.values()
        return Response(200, {"results": [prop.to_api(index) for index, prop in enumerate(props)]})

    def _property(self, _request: Request, match: re.Match[str]) -> Response:
        schema = self.portal.schema
        name = match["key"]
        if name not in schema:
            body = error_body(
                f"Unable to find property {name} for object type contacts", "OBJECT_NOT_FOUND"
            )
            raise ApiError(Response(404, body))
        return Response(200, schema[name].to_api(list(schema).index(name)))
