"""The JSON Schemas of mappings/ stay in step with the loaders: generated from the description
the loaders use, committed as generated, met by every shipped file, and accepting exactly the
keys the loaders accept (every schema key is accepted, any other key is refused by both)."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from crmbridge.errors import ConfigError
from crmbridge.filespec import FileSpec
from crmbridge.mapping import load_mapping
from crmbridge.mapping.filespec import FIELDS, STAGES
from crmbridge.rules.filespec import QUALIFICATION
from crmbridge.rules.loader import read_rule_set
from crmbridge.schemas import FILE_SPECS, SCHEMA_DIR, schema_text
from crmbridge.yamlfile import load_yaml

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
SINK = Path(__file__).resolve().parent / "kitchen_sink"

#: Each file's kitchen sink: documents that together use every key the schema has.
SINKS: dict[str, list[str]] = {
    "qualification.yaml": ["qualification-match.yaml", "qualification-tiers.yaml"],
    "fields.yaml": ["fields.yaml"],
    "stages.yaml": ["stages.yaml"],
}
SPECS = {spec.file: spec for spec in FILE_SPECS}

Path_ = tuple[str | int, ...]


def data_of(path: Path) -> Any:
    return load_yaml(path).plain()


def validator(spec: FileSpec) -> Draft202012Validator:
    return Draft202012Validator(spec.json_schema())


def objects(spec: FileSpec, doc: Any) -> Iterator[tuple[dict[str, Any], Path_]]:
    """Every fixed-key object of ``doc`` with the schema it meets there, and where it is."""
    root = spec.json_schema()
    defs = root.get("$defs", {})

    def meets(schema: dict[str, Any], value: Any) -> bool:
        return Draft202012Validator({**schema, "$defs": defs}).is_valid(value)

    def walk(
        schema: dict[str, Any], value: Any, at: Path_
    ) -> Iterator[tuple[dict[str, Any], Path_]]:
        if "$ref" in schema:
            yield from walk(defs[schema["$ref"].rsplit("/", 1)[1]], value, at)
            return
        if "if" in schema:
            branch = schema["then"] if meets(schema["if"], value) else schema["else"]
            yield from walk(branch, value, at)
            return
        if "anyOf" in schema:
            chosen = next(o for o in schema["anyOf"] if meets(o, value))
            yield from walk(chosen, value, at)
            return
        if isinstance(value, dict) and "properties" in schema:
            yield schema, at
            for key, item in value.items():
                yield from walk(schema["properties"][key], item, (*at, key))
        elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            for key, item in value.items():
                yield from walk(schema["additionalProperties"], item, (*at, key))
        elif isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                yield from walk(schema["items"], item, (*at, index))

    yield from walk(root, doc, ())


def object_schemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every fixed-key object schema anywhere in ``schema``."""
    if isinstance(schema, dict):
        if "properties" in schema and schema.get("additionalProperties") is False:
            yield schema
        for value in schema.values():
            yield from object_schemas(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from object_schemas(value)


def load_as_crmbridge(file: str, doc: Any, tmp_path: Path) -> None:
    """Load ``doc`` (written as JSON, which is YAML) with the loader of ``file``."""
    if file == "qualification.yaml":
        path = tmp_path / file
        path.write_text(json.dumps(doc), encoding="utf-8")
        read_rule_set(path)
        return
    directory = tmp_path / "mappings"
    directory.mkdir(exist_ok=True)
    shutil.copy(SINK / "fields.yaml", directory / "fields.yaml")
    shutil.copy(SINK / "stages.yaml", directory / "stages.yaml")
    (directory / file).write_text(json.dumps(doc), encoding="utf-8")
    load_mapping(directory)


@pytest.mark.parametrize("spec", FILE_SPECS, ids=lambda s: s.file)
def test_the_committed_schemas_are_what_the_loaders_description_generates(spec: FileSpec) -> None:
    """mappings/schema/*.json are exactly what `crmbridge mappings schema` writes today."""
    committed = (SHIPPED / SCHEMA_DIR / spec.schema_file).read_text(encoding="utf-8")
    assert committed == schema_text(spec)
    Draft202012Validator.check_schema(spec.json_schema())


SHIPPED_FILES = [
    ("qualification.yaml", QUALIFICATION),
    ("fields.yaml", FIELDS),
    ("stages.yaml", STAGES),
    ("examples/qualification-tiers.yaml", QUALIFICATION),
    ("examples/qualification-score.yaml", QUALIFICATION),
]


@pytest.mark.parametrize(("name", "spec"), SHIPPED_FILES, ids=[n for n, _ in SHIPPED_FILES])
def test_every_shipped_file_meets_its_schema_and_points_at_it(name: str, spec: FileSpec) -> None:
    """The shipped files validate, and their first line names their schema for editors."""
    path = SHIPPED / name
    errors = [e.message for e in validator(spec).iter_errors(data_of(path))]
    assert errors == []
    first = path.read_text(encoding="utf-8").splitlines()[0]
    relative = Path("..") if name.startswith("examples/") else Path()
    assert first == f"# yaml-language-server: $schema={relative / SCHEMA_DIR / spec.schema_file}"


@pytest.mark.parametrize("file", list(SINKS))
def test_every_schema_key_is_one_the_loader_accepts(file: str, tmp_path: Path) -> None:
    """The kitchen sinks use every key of every object of the schema, meet the schema, and
    load without a problem: no key in the schema is one the loader refuses."""
    spec = SPECS[file]
    reached: dict[frozenset[str], set[str]] = {}
    for name in SINKS[file]:
        doc = data_of(SINK / name)
        assert [e.message for e in validator(spec).iter_errors(doc)] == []
        load_as_crmbridge(file, doc, tmp_path)
        for schema, at in objects(spec, doc):
            reached.setdefault(frozenset(schema["properties"]), set()).update(_keys_at(doc, at))
    declared = {frozenset(s["properties"]) for s in object_schemas(spec.json_schema())}
    assert set(reached) == declared, "an object of the schema is missing from the kitchen sink"
    for keys, seen in reached.items():
        assert seen == set(keys), f"keys the kitchen sink never uses: {sorted(keys - seen)}"


def _keys_at(doc: Any, at: Path_) -> set[str]:
    node = doc
    for step in at:
        node = node[step]
    return set(node)


def _instances() -> Iterator[tuple[str, str, Path_]]:
    for file, names in SINKS.items():
        for name in names:
            for _, at in objects(SPECS[file], data_of(SINK / name)):
                yield file, name, at


INSTANCES = list(_instances())


@pytest.mark.parametrize(
    ("file", "name", "at"), INSTANCES, ids=[f"{n}:{'.'.join(map(str, a))}" for _, n, a in INSTANCES]
)
def test_a_key_outside_the_schema_is_refused_by_both(
    file: str, name: str, at: Path_, tmp_path: Path
) -> None:
    """An unknown key added to any object: the schema flags it and the loader refuses it,
    so the loader accepts no key the schema does not have."""
    doc = copy.deepcopy(data_of(SINK / name))
    node = doc
    for step in at:
        node = node[step]
    node["zz_not_a_key"] = "x"
    assert not validator(SPECS[file]).is_valid(doc)
    with pytest.raises(ConfigError):
        load_as_crmbridge(file, doc, tmp_path)
