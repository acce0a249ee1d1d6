"""A declarative description of the admin's files: keys, value shapes, enumerations, docs.

One source of truth for two readers. The loaders (``rules/loader.py``, ``mapping/loader.py``)
take the keys they accept, the keys they require and the choices of every enumeration from
it; :meth:`FileSpec.json_schema` turns it into the JSON Schema an editor uses to complete and
flag keys as the admin types (``crmbridge mappings schema``). A key added to a loader is added
here, so both change together; ``tests/unit/test_file_schema.py`` checks they agree.

The loaders keep the checks a schema cannot say (a threshold that must be a number when the
criterion parses numbers, a pattern RE2 cannot run, a picklist value Salesforce refuses), and
word every problem for a person with ``file:line`` and a hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AnyOf",
    "Boolean",
    "Enum",
    "FileSpec",
    "IfHas",
    "Integer",
    "Key",
    "ListOf",
    "MapOf",
    "Null",
    "Number",
    "Obj",
    "Ref",
    "Scalar",
    "Shape",
    "Text",
    "When",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Shape:
    """What a value may be; :meth:`schema` is its JSON Schema."""

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Shape):
    pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.pattern:
            out["pattern"] = f"^(?:{self.pattern})$"
        return out


@dataclass(frozen=True)
class Integer(Shape):
    minimum: int | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        return out


@dataclass(frozen=True)
class Number(Shape):
    def schema(self) -> dict[str, Any]:
        return {"type": "number"}


@dataclass(frozen=True)
class Boolean(Shape):
    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Null(Shape):
    def schema(self) -> dict[str, Any]:
        return {"type": "null"}


@dataclass(frozen=True)
class Scalar(Shape):
    """Text, a number or true/false (a constant sent to Salesforce)."""

    def schema(self) -> dict[str, Any]:
        return {"type": ["string", "number", "boolean"]}


@dataclass(frozen=True)
class Enum(Shape):
    values: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class ListOf(Shape):
    item: Shape
    min_items: int = 1

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema(), "minItems": self.min_items}


@dataclass(frozen=True)
class MapOf(Shape):
    """A mapping whose keys the admin chooses (field names, table names) to one shape."""

    value: Shape
    key_pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "minProperties": 1}
        if self.key_pattern:
            out["propertyNames"] = {"pattern": f"^(?:{self.key_pattern})$"}
        out["additionalProperties"] = self.value.schema()
        return out


@dataclass(frozen=True)
class AnyOf(Shape):
    options: tuple[Shape, ...]

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [option.schema() for option in self.options]}


@dataclass(frozen=True)
class Ref(Shape):
    """A named object of the same file (see :attr:`FileSpec.defs`): lets rules nest."""

    name: str

    def schema(self) -> dict[str, Any]:
        return {"$ref": f"#/$defs/{self.name}"}


@dataclass(frozen=True)
class IfHas(Shape):
    """``then`` when the mapping has ``key``, else ``otherwise`` (a group has ``criteria``)."""

    key: str
    then: Shape
    otherwise: Shape

    def schema(self) -> dict[str, Any]:
        return {
            "if": {"type": "object", "required": [self.key]},
            "then": self.then.schema(),
            "else": self.otherwise.schema(),
        }


@dataclass(frozen=True)
class Key:
    """One key of an object: its value's shape and the sentence an editor shows for it."""

    name: str
    shape: Shape
    doc: str
    required: bool = False


@dataclass(frozen=True)
class When:
    """When ``key`` is one of ``values``, the object also needs ``needs`` and may not have
    ``refuses`` (an operator's operands)."""

    key: str
    values: tuple[str, ...]
    needs: tuple[str, ...] = ()
    refuses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Obj(Shape):
    """A mapping with a fixed set of keys; anything else is an unknown key."""

    keys: tuple[Key, ...]
    doc: str = ""
    #: Exactly one key of each group must be present (``from`` or ``value``).
    one_of: tuple[tuple[str, ...], ...] = ()
    when: tuple[When, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        """Every key this object accepts, in file order."""
        return tuple(k.name for k in self.keys)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys if k.required)

    def key(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def enum(self, name: str) -> tuple[str, ...]:
        """The choices of the enumeration under key ``name``."""
        shape = self.key(name).shape
        if not isinstance(shape, Enum):
            raise TypeError(f"{name} is not an enumeration")
        return shape.values

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if self.doc:
            out["description"] = self.doc
        out["properties"] = {k.name: {**k.shape.schema(), "description": k.doc} for k in self.keys}
        if self.required:
            out["required"] = list(self.required)
        out["additionalProperties"] = False
        conditions: list[dict[str, Any]] = [
            {"oneOf": [{"required": [name]} for name in group]} for group in self.one_of
        ]
        for rule in self.when:
            then: dict[str, Any] = {}
            if rule.needs:
                then["required"] = list(rule.needs)
            if rule.refuses:
                then["not"] = {"anyOf": [{"required": [name]} for name in rule.refuses]}
            conditions.append(
                {
                    "if": {
                        "properties": {rule.key: {"enum": list(rule.values)}},
                        "required": [rule.key],
                    },
                    "then": then,
                }
            )
        if conditions:
            out["allOf"] = conditions
        return out


@dataclass(frozen=True)
class FileSpec:
    """One admin file: its name, its top-level object, and named objects it refers to."""

    file: str
    title: str
    root: Obj
    defs: Mapping[str, Shape] = field(default_factory=dict)

    @property
    def schema_file(self) -> str:
        """``fields.yaml`` → ``fields.schema.json``."""
        return self.file.rsplit(".", 1)[0] + ".schema.json"

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of this file."""
        schema: dict[str, Any] = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"https://crmbridge.invalid/schema/{self.schema_file}",
            "title": self.title,
            **self.root.schema(),
        }
        if self.defs:
            schema["$defs"] = {name: shape.schema() for name, shape in self.defs.items()}
        return schema

    def objects(self) -> list[Obj]:
        """Every object of the file, nested ones included, each once (for checks and docs)."""
        found: list[Obj] = []

        def walk(shape: Shape) -> None:
            if isinstance(shape, Obj):
                if any(shape is seen for seen in found):
                    return
                found.append(shape)
                for key in shape.keys:
                    walk(key.shape)
            elif isinstance(shape, ListOf):
                walk(shape.item)
            elif isinstance(shape, MapOf):
                walk(shape.value)
            elif isinstance(shape, AnyOf):
                for option in shape.options:
                    walk(option)
            elif isinstance(shape, IfHas):
                walk(shape.then)
                walk(shape.otherwise)

        walk(self.root)
        for shape in self.defs.values():
            walk(shape)
        return found
