"""`crmbridge mappings init` and `mappings schema` as an admin runs them, against both
simulators: a commented starter map that validate accepts and a real pass can use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from crmbridge.sandbox.runtime import Sandbox
from crmbridge.schemas import FILE_SPECS, schema_text
from crmbridge.yamlfile import load_yaml

from ._cli import crmbridge, sandbox_env

PROPERTIES = "GET /crm/v3/properties/contacts"
DESCRIBE = "GET /sobjects/Lead/describe"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=60, seed=5, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> dict[str, str]:
    return sandbox_env(
        box,
        tmp_path,
        CRMBRIDGE_MAPPINGS_DIR=str(tmp_path / "starter"),
        CRMBRIDGE_HUBSPOT__INDEX_LAG_S="0",
    )


def test_init_writes_a_starter_map_that_validates_and_syncs(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """One properties call and one describe make three commented files that meet their
    schemas, pass `validate` (the files and the live describe), and carry a real dry run."""
    properties, describes = (
        box.hubspot.calls.count(PROPERTIES),
        box.salesforce.calls.count(DESCRIBE),
    )
    done = crmbridge("mappings", "init", "--out", "starter", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert box.hubspot.calls.count(PROPERTIES) == properties + 1
    assert box.salesforce.calls.count(DESCRIBE) == describes + 1
    starter = tmp_path / "starter"
    fields = (starter / "fields.yaml").read_text(encoding="utf-8")
    assert "  LastName: {from: lastname," in fields
    assert '  # LastName (string) ← HubSpot "Last Name" (string)' in fields
    assert "Industry: {from: industry, value_map: {" in fields
    for spec in FILE_SPECS:
        data = load_yaml(starter / spec.file).plain()
        assert list(Draft202012Validator(spec.json_schema()).iter_errors(data)) == []
        assert (starter / "schema" / spec.schema_file).read_text() == schema_text(spec)
    validated = crmbridge("validate", env=env, cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert "rule set 'starter'" in validated.stdout
    assert "checked against Salesforce's describe of Lead" in validated.stdout
    dry = crmbridge("sync", "--dry-run", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would be created" in dry.stdout


def test_init_does_not_overwrite_an_existing_map(env: dict[str, str], tmp_path: Path) -> None:
    """Existing files are refused (exit 2, each named) unless --force."""
    (tmp_path / "starter").mkdir()
    (tmp_path / "starter" / "fields.yaml").write_text("mine\n", encoding="utf-8")
    done = crmbridge("mappings", "init", "--out", "starter", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "fields.yaml: already exists" in done.stderr
    assert (tmp_path / "starter" / "fields.yaml").read_text(encoding="utf-8") == "mine\n"


def test_schema_writes_the_schemas_editors_use(env: dict[str, str], tmp_path: Path) -> None:
    """`mappings schema --out DIR` writes the three schemas as the repository holds them."""
    done = crmbridge("mappings", "schema", "--out", "out", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for spec in FILE_SPECS:
        assert (tmp_path / "out" / spec.schema_file).read_text() == schema_text(spec)
