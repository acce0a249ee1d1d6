"""The pipelines file: several pipelines, each with its own endpoints, secrets and map."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.pipelines import json_schema, load_pipelines, pipelines_from, select_pipeline
from crmbridge.settings import RetrySettings, Settings

GOOD = """\
pipelines:
  - name: emea
    mappings_dir: maps/emea
    poll_interval_s: 120
    hubspot:
      base_url: http://127.0.0.1:9001
      access_token_file: secrets/hubspot-emea
    salesforce:
      instance_url: https://127.0.0.1:9002
      access_token_env: TEST_SF_EMEA_TOKEN
      reserve_fraction: 0.3
    retry: {max_total_s: 600}
  - name: us
    hubspot:
      access_token_env: TEST_HS_US_TOKEN
    salesforce:
      instance_url: https://us.my.salesforce.com
      access_token_env: TEST_SF_US_TOKEN
"""


@pytest.fixture
def base() -> Settings:
    return Settings(retry=RetrySettings(max_attempts=9), poll_interval_s=30)


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SF_EMEA_TOKEN", "sf-emea-secret")
    monkeypatch.setenv("TEST_HS_US_TOKEN", "hs-us-secret\r\n")
    monkeypatch.setenv("TEST_SF_US_TOKEN", "sf-us-secret")


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "hubspot-emea").write_text("hs-emea-secret\n", encoding="utf-8")
    path = tmp_path / "pipelines.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, base: Settings) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_pipelines(write(tmp_path, text), base)
    return [f"{p.location}: {p.message} | {p.hint}" for p in caught.value.problems]


def test_each_pipeline_gets_its_own_endpoints_and_secrets(tmp_path: Path, base: Settings) -> None:
    """Secrets come from a file or a variable (stripped); paths are relative to the file."""
    emea, us = load_pipelines(write(tmp_path, GOOD), base)
    assert (emea.name, us.name) == ("emea", "us")
    hubspot = emea.settings.hubspot
    assert hubspot.base_url == "http://127.0.0.1:9001"
    assert hubspot.access_token is not None
    assert hubspot.access_token.get_secret_value() == "hs-emea-secret"
    salesforce = emea.settings.salesforce
    assert salesforce.access_token is not None
    assert salesforce.access_token.get_secret_value() == "sf-emea-secret"
    assert salesforce.reserve_fraction == 0.3
    assert emea.settings.mappings_dir == tmp_path / "maps" / "emea"
    assert emea.settings.poll_interval_s == 120
    us_token = us.settings.hubspot.access_token
    assert us_token is not None
    assert us_token.get_secret_value() == "hs-us-secret"
    assert us.settings.hubspot.base_url == "https://api.hubapi.com"


def test_unset_values_come_from_the_environment_settings(tmp_path: Path, base: Settings) -> None:
    """Retry keys merge with the environment's; the mappings dir and interval default to it."""
    emea, us = load_pipelines(write(tmp_path, GOOD), base)
    assert (emea.settings.retry.max_total_s, emea.settings.retry.max_attempts) == (600, 9)
    assert us.settings.mappings_dir == base.mappings_dir
    assert us.settings.poll_interval_s == 30
    assert us.settings.state_url == base.state_url


def test_without_a_file_the_environment_is_the_default_pipeline(base: Settings) -> None:
    """No CRMBRIDGE_PIPELINES_FILE: one pipeline, `default`, with the settings as they are."""
    [spec] = pipelines_from(base)
    assert spec.name == "default"
    assert spec.settings is base


def test_an_inline_token_is_refused_at_its_line(tmp_path: Path, base: Settings) -> None:
    """A token written in the file is refused, pointing at the line and the two other ways."""
    text = GOOD.replace("access_token_env: TEST_HS_US_TOKEN", "access_token: pat-123")
    [found] = problems(tmp_path, text, base)
    assert found.startswith(f"{tmp_path / 'pipelines.yaml'}:15:")
    assert "never written in this file" in found
    assert "access_token_file" in found
    assert "pat-123" not in found


def test_a_wrong_value_is_reported_at_its_line_with_the_settings_hint(
    tmp_path: Path, base: Settings
) -> None:
    """The same checks as the environment's settings, located in the file."""
    text = GOOD.replace("https://us.my.salesforce.com", "http://us.my.salesforce.com")
    [found] = problems(tmp_path, text, base)
    assert found.startswith(f"{tmp_path / 'pipelines.yaml'}:17:")
    assert "salesforce.instance_url" in found
    assert "must start with https://" in found


def test_every_problem_of_the_file_is_listed(tmp_path: Path, base: Settings) -> None:
    """Unknown keys, a bad name, a duplicate, a missing secret: all in one round."""
    text = """\
pipelines:
  - name: Bad Name
    hubspot: {access_token_env: TEST_HS_US_TOKEN}
    salesforce: {instance_url: "https://a.my.salesforce.com", access_token_env: TEST_SF_US_TOKEN}
  - name: us
    hubspot: {access_token_env: NOT_SET_ANYWHERE}
    salesforce: {instance_url: "https://a.my.salesforce.com", access_token_env: TEST_SF_US_TOKEN}
  - name: eu
    hubspot: {acess_token_env: TEST_HS_US_TOKEN}
    salesforce: {instance_url: "https://a.my.salesforce.com", access_token_env: TEST_SF_US_TOKEN}
  - name: eu
    mapings_dir: x
    hubspot: {access_token_env: TEST_HS_US_TOKEN}
    salesforce: {instance_url: "https://a.my.salesforce.com", access_token_env: TEST_SF_US_TOKEN}
"""
    found = problems(tmp_path, text, base)
    joined = "\n".join(found)
    assert 'pipeline name "Bad Name" is not allowed' in joined
    assert ":6:" in joined
    assert "NOT_SET_ANYWHERE is not set" in joined
    assert 'unknown key "acess_token_env"' in joined
    assert 'did you mean "access_token_env"' in joined
    assert 'unknown key "mapings_dir"' in joined


def test_a_name_used_twice_is_refused(tmp_path: Path, base: Settings) -> None:
    """Names key the state: two pipelines may not share one."""
    text = GOOD.replace("name: us", "name: emea")
    [found] = problems(tmp_path, text, base)
    assert 'pipeline "emea" is defined twice (first at line 2)' in found


def test_a_pipeline_without_endpoints_is_refused(tmp_path: Path, base: Settings) -> None:
    """No hubspot section, no Salesforce token: each named, with what to add."""
    text = (
        "pipelines:\n  - name: a\n    salesforce: {instance_url: 'https://x.my.salesforce.com'}\n"
    )
    joined = "\n".join(problems(tmp_path, text, base))
    assert 'has no "hubspot" section' in joined
    assert "Salesforce needs instance_url and an access token" in joined


def test_a_missing_file_names_the_variable(tmp_path: Path, base: Settings) -> None:
    """CRMBRIDGE_PIPELINES_FILE pointing nowhere is a configuration error naming it."""
    with pytest.raises(ConfigError, match="CRMBRIDGE_PIPELINES_FILE"):
        pipelines_from(base.model_copy(update={"pipelines_file": tmp_path / "nope.yaml"}))


def test_an_unreadable_secret_file_is_named(tmp_path: Path, base: Settings) -> None:
    """A token file that is not there is reported at its line."""
    text = GOOD.replace("secrets/hubspot-emea", "secrets/missing")
    [found] = problems(tmp_path, text, base)
    assert ":7:" in found
    assert "cannot read the access token file" in found


def test_select_pipeline_names_the_configured_ones(tmp_path: Path, base: Settings) -> None:
    """--pipeline with an unknown name lists the names there are."""
    specs = load_pipelines(write(tmp_path, GOOD), base)
    assert [s.name for s in select_pipeline(specs, "us")] == ["us"]
    with pytest.raises(ConfigError, match="configured: emea, us"):
        select_pipeline(specs, "apac")


def _schema_errors(text: str) -> list[str]:
    import jsonschema  # noqa: PLC0415 - test-only dependency
    from ruamel.yaml import YAML  # noqa: PLC0415

    validator = jsonschema.Draft202012Validator(json_schema())
    return [error.message for error in validator.iter_errors(YAML(typ="safe").load(text))]


def test_the_files_the_loader_accepts_meet_the_schema() -> None:
    """The README's example and this module's file are valid for editors too."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running several pipelines") :]
    example = section[section.index("```yaml") + len("```yaml") : section.index("```\n", 10)]
    assert "pipelines:" in example
    assert _schema_errors(example) == []
    assert _schema_errors(GOOD) == []


def test_what_the_loader_refuses_the_schema_flags() -> None:
    """An inline token, an unknown key, a bad name: flagged while the admin types."""
    for text in (
        GOOD.replace("access_token_env: TEST_HS_US_TOKEN", "access_token: pat-1"),
        GOOD.replace("reserve_fraction", "reserve_fractoin"),
        GOOD.replace("name: us", "name: US West"),
    ):
        assert _schema_errors(text), text
