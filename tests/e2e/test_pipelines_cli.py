"""Several pipelines from one file: each syncs its own portal into its own org, with its own
state in the one store; commands pick one with --pipeline; config show masks every secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox

from ._cli import base_env, crmbridge

PIPELINES = """\
pipelines:
  - name: emea
    hubspot:
      base_url: {hs_a}
      access_token_env: TEST_HS_A
    salesforce:
      instance_url: {sf_a}
      access_token_file: sf-a.token
      ca_bundle: {ca_a}
  - name: us
    hubspot:
      base_url: {hs_b}
      access_token_env: TEST_HS_B
      search_per_s: 100
    salesforce:
      instance_url: {sf_b}
      access_token_env: TEST_SF_B
      ca_bundle: {ca_b}
"""


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Sandbox]]:
    ca = tmp_path_factory.mktemp("ca")
    with (
        Sandbox(contacts=60, seed=3, ca_dir=ca / "a") as a,
        Sandbox(contacts=90, seed=4, ca_dir=ca / "b") as b,
    ):
        yield a, b


@pytest.fixture
def env(boxes: tuple[Sandbox, Sandbox], tmp_path: Path) -> dict[str, str]:
    a, b = boxes
    for box in boxes:
        box.hubspot.reset()
        box.salesforce.reset()
    (tmp_path / "sf-a.token").write_text(a.salesforce.access_token + "\n", encoding="utf-8")
    (tmp_path / "pipelines.yaml").write_text(
        PIPELINES.format(
            hs_a=a.hubspot_url,
            sf_a=a.salesforce_url,
            ca_a=a.salesforce.ca_path,
            hs_b=b.hubspot_url,
            sf_b=b.salesforce_url,
            ca_b=b.salesforce.ca_path,
        ),
        encoding="utf-8",
    )
    return {
        **base_env(),
        "CRMBRIDGE_PIPELINES_FILE": str(tmp_path / "pipelines.yaml"),
        "CRMBRIDGE_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "CRMBRIDGE_HUBSPOT__SEARCH_PER_S": "100",
        "TEST_HS_A": a.hubspot.access_token,
        "TEST_HS_B": b.hubspot.access_token,
        "TEST_SF_B": b.salesforce.access_token,
    }


def test_config_show_prints_every_pipeline_with_secrets_masked(
    boxes: tuple[Sandbox, Sandbox], env: dict[str, str], tmp_path: Path
) -> None:
    """Both pipelines, their own endpoints, every token masked (file and variable alike)."""
    result = crmbridge("config", "show", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert sorted(shown["pipelines"]) == ["emea", "us"]
    us = shown["pipelines"]["us"]
    assert us["hubspot"]["base_url"] == boxes[1].hubspot_url
    assert us["hubspot"]["search_per_s"] == 100
    for pipeline in shown["pipelines"].values():
        assert pipeline["hubspot"]["access_token"] == "**********"
        assert pipeline["salesforce"]["access_token"] == "**********"
    for box in boxes:
        assert box.hubspot.access_token not in result.stdout + result.stderr
        assert box.salesforce.access_token not in result.stdout + result.stderr


def test_each_pipeline_syncs_its_own_portal_into_its_own_org(
    boxes: tuple[Sandbox, Sandbox], env: dict[str, str], tmp_path: Path
) -> None:
    """`state init` makes both; `sync --once` runs both; each org gets its portal's leads and
    each pipeline's reject log is its own."""
    init = crmbridge("state", "init", env=env, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert init.stdout.count("Created a new state store.") == 2
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pipeline emea" in result.stdout
    assert "pipeline us" in result.stdout
    a, b = boxes
    a_ids = {str(lead["HubSpot_Contact_Id__c"]) for lead in a.salesforce.org.leads}
    b_ids = {str(lead["HubSpot_Contact_Id__c"]) for lead in b.salesforce.org.leads}
    assert a_ids
    assert b_ids
    counts = {}
    for name in ("emea", "us"):
        listed = crmbridge(
            "rejects",
            "list",
            "--pipeline",
            name,
            "--format",
            "json",
            "--limit",
            "1000",
            env=env,
            cwd=tmp_path,
        )
        assert listed.returncode == 0, listed.stderr
        counts[name] = len(json.loads(listed.stdout))
    assert counts["emea"] + len(a_ids) <= 60
    assert counts["us"] + len(b_ids) <= 90
    assert counts["us"] > counts["emea"] > 0
    again = crmbridge("sync", "--once", "--pipeline", "us", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "pipeline us" not in again.stdout  # one pipeline: its summary alone


def test_a_reading_command_needs_a_pipeline_when_there_are_several(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`rejects list` without --pipeline says which to name (exit 2); an unknown one too."""
    assert crmbridge("state", "init", env=env, cwd=tmp_path).returncode == 0
    result = crmbridge("rejects", "list", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "defines 2 pipelines: name one" in result.stderr
    unknown = crmbridge("sync", "--once", "--pipeline", "apac", env=env, cwd=tmp_path)
    assert unknown.returncode == 2
    assert "configured: emea, us" in unknown.stderr


def test_a_wrong_pipelines_file_exits_2_with_its_line(env: dict[str, str], tmp_path: Path) -> None:
    """A mistake in the file stops `run` at start with file:line and a hint, never a traceback."""
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("access_token_env: TEST_SF_B", "acces: x"),
        encoding="utf-8",
    )
    result = crmbridge("run", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}:17" in result.stderr
    assert 'unknown key "acces"' in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_checks_every_pipeline_against_its_own_org(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`validate` names each pipeline and checks its map against its org's describe."""
    result = crmbridge("validate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pipeline emea" in result.stdout
    assert "pipeline us" in result.stdout
    assert result.stdout.count("checked against Salesforce's describe of Lead") == 2
