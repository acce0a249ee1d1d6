"""The ``crmbridge`` command as a user runs it: a subprocess against both simulators."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmbridge.sandbox._server import Fault, Response
from crmbridge.sandbox.runtime import Sandbox

from ._cli import REPO, base_env, count_line, crmbridge, run_until_logged, sandbox_env
from .conftest import write_rsa_key


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=150, seed=3, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


@pytest.fixture
def fresh_env(box: Sandbox, tmp_path: Path) -> dict[str, str]:
    """Settings pointing at the simulators and at a state store that does not exist yet."""
    return sandbox_env(box, tmp_path, with_store=False)


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> dict[str, str]:
    """Settings pointing at the simulators, the state store made as `state init` makes it."""
    return sandbox_env(box, tmp_path)


def test_sync_once_prints_a_summary_matching_salesforce(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """`sync --once` exits 0 and its summary counts what Salesforce now holds."""
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Pass summary" in out
    created = count_line(out, "synced: created")
    assert created == len(box.salesforce.org.leads) > 0
    assert count_line(out, "rejected") > 0
    assert count_line(out, "pulled from HubSpot") == created + count_line(out, "rejected")


def test_dry_run_prints_predictions_and_creates_no_state(
    box: Sandbox, fresh_env: dict[str, str], tmp_path: Path
) -> None:
    """`sync --dry-run` prints what would happen, pushes nothing and creates no state file."""
    result = crmbridge("sync", "--dry-run", env=fresh_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Dry run: nothing pushed, nothing written" in result.stdout
    assert count_line(result.stdout, "would be created") > 0
    assert count_line(result.stdout, "would be rejected") > 0
    assert box.salesforce.org.leads == []
    assert not (tmp_path / "state.db").exists()


def test_second_sync_pushes_nothing(box: Sandbox, env: dict[str, str], tmp_path: Path) -> None:
    """Running `sync --once` again makes no Salesforce upsert."""
    assert crmbridge("sync", "--once", env=env, cwd=tmp_path).returncode == 0
    upserts = box.salesforce.calls.count("PATCH /composite/sobjects/Lead/{extField}")
    again = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert count_line(again.stdout, "synced: created") == 0
    assert count_line(again.stdout, "pulled from HubSpot") == 0
    assert box.salesforce.calls.count("PATCH /composite/sobjects/Lead/{extField}") == upserts


def test_rejects_list_and_show(env: dict[str, str], tmp_path: Path) -> None:
    """The reject log lists each reject with email, rule version and reasons; show explains one."""
    assert crmbridge("sync", "--once", env=env, cwd=tmp_path).returncode == 0
    listed = crmbridge(
        "rejects", "list", "--format", "json", "--limit", "500", env=env, cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert records
    for record in records:
        assert record["rule_set_version"] == "bant-2026.2"
        assert record["reasons"]
        assert all(reason["message"] for reason in record["reasons"])
    table = crmbridge("rejects", "list", env=env, cwd=tmp_path)
    assert table.returncode == 0
    assert "bant-2026.2" in table.stdout
    assert records[0]["reasons"][0]["message"][:60] in table.stdout
    shown = crmbridge("rejects", "show", str(records[0]["id"]), env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"Reject {records[0]['id']}" in shown.stdout
    assert "rule-set version  bant-2026.2" in shown.stdout
    assert records[0]["reasons"][0]["message"] in shown.stdout
    missing = crmbridge("rejects", "show", "999999", env=env, cwd=tmp_path)
    assert missing.returncode != 0
    assert "no reject with id 999999" in missing.stderr


def test_rejects_filter_by_criterion(env: dict[str, str], tmp_path: Path) -> None:
    """`--criterion budget` lists only rejects with a failed budget criterion."""
    assert crmbridge("sync", "--once", env=env, cwd=tmp_path).returncode == 0
    result = crmbridge(
        "rejects", "list", "--criterion", "budget", "--format", "json", env=env, cwd=tmp_path
    )
    records = json.loads(result.stdout)
    assert records
    assert all(any(r["criterion"] == "budget" for r in rec["reasons"]) for rec in records)


def test_logs_are_json_and_hold_no_secret(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """Logs are one JSON object per line, and no token appears anywhere in the output."""
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any(e.get("event") == "pass_finished" for e in events)
    shown = crmbridge("config", "show", env=env, cwd=tmp_path)
    for output in (result.stdout, result.stderr, shown.stdout):
        assert box.hubspot.access_token not in output
        assert box.salesforce.access_token not in output
    assert "**********" in shown.stdout


def test_run_daemon_exits_cleanly_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    """`crmbridge run` finishes its pass, waits, and exits 0 on SIGTERM."""
    env = {**env, "CRMBRIDGE_POLL_INTERVAL_S": "3600"}
    _, code, rest = run_until_logged("pass_finished", env=env, cwd=tmp_path)
    assert code == 0, rest
    assert "stop_requested" in rest


API_DISABLED = Fault(
    "GET",
    "/describe$",
    Response(
        403,
        [
            {
                "errorCode": "API_DISABLED_FOR_ORG",
                "message": "API is not enabled for this Organization or Partner",
            }
        ],
    ),
    times=1000,
)
MISSING_SCOPES = Fault(
    "POST",
    "/search",
    Response(
        403,
        {
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "category": "MISSING_SCOPES",
        },
    ),
    times=1000,
)


@pytest.mark.parametrize(
    ("system", "fault", "shown"),
    [
        ("salesforce", API_DISABLED, "API_DISABLED_FOR_ORG"),
        ("hubspot", MISSING_SCOPES, "MISSING_SCOPES"),
    ],
)
def test_a_refusal_in_a_pass_that_is_not_about_credentials_exits_1(
    box: Sandbox, env: dict[str, str], tmp_path: Path, system: str, fault: Fault, shown: str
) -> None:
    """Salesforce API_DISABLED_FOR_ORG or HubSpot 403 MISSING_SCOPES in a pass ends
    `sync --once` with exit 1 (not 3: the credentials were accepted) and says a person must
    fix it."""
    simulator = box.salesforce if system == "salesforce" else box.hubspot
    simulator.faults.add(replace(fault))
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"STOPPED EARLY: FatalApiError: {system}:" in result.stdout
    assert shown in result.stdout
    assert "a person must fix this" in result.stdout
    assert "Traceback" not in result.stderr


def test_run_keeps_trying_a_pass_refused_for_other_than_credentials(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """`run` whose pass Salesforce refuses (API_DISABLED_FOR_ORG) does not exit: it logs
    `pass_blocked` with its backoff and ends with 0 on SIGTERM."""
    box.salesforce.faults.add(replace(API_DISABLED))
    env = {**env, "CRMBRIDGE_POLL_INTERVAL_S": "1"}
    seen, code, rest = run_until_logged("pass_blocked", env=env, cwd=tmp_path)
    blocked = [json.loads(line) for line in seen.splitlines() if '"pass_blocked"' in line]
    assert [(e["consecutive"], e["retry_in_s"]) for e in blocked] == [(1, 30.0)]
    assert code == 0, rest
    assert "stop_requested" in rest


def test_missing_endpoints_name_the_variables(tmp_path: Path) -> None:
    """Without endpoints, `sync` exits 2 naming each variable to set."""
    result = crmbridge("sync", "--once", env=base_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN" in result.stderr
    assert "CRMBRIDGE_SALESFORCE__INSTANCE_URL" in result.stderr
    assert "crmbridge demo" in result.stderr


def test_refused_token_exits_3(env: dict[str, str], tmp_path: Path) -> None:
    """A HubSpot token the portal refuses ends `sync --once` with exit code 3."""
    env = {**env, "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN": "pat-wrong"}
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 3
    assert "AuthenticationError" in result.stdout + result.stderr


def test_validate_points_at_file_and_line(tmp_path: Path) -> None:
    """A broken rule file gives `file:line`, a hint and exit code 2; a good one says OK."""
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    env = {**base_env(), "CRMBRIDGE_MAPPINGS_DIR": str(mappings)}
    ok = crmbridge("validate", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    rules = mappings / "qualification.yaml"
    lines = rules.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip() == "op: gt")
    lines[number - 1] = lines[number - 1].replace("op: gt", "op: bigger")
    rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = crmbridge("validate", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert f"qualification.yaml:{number}" in bad.stderr
    assert "hint:" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_demo_runs_three_passes(tmp_path: Path) -> None:
    """`crmbridge demo` backfills, syncs two edits, then finds nothing to do."""
    result = crmbridge("demo", "--contacts", "120", env=base_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("Pass 1: backfill", "Pass 2: after edits", "Pass 3: nothing changed"):
        assert heading in out
    pass2 = out.split("== Pass 2")[1].split("== Pass 3")[0]
    assert count_line(pass2, "synced: created") == 1
    assert count_line(pass2, "synced: updated") == 1
    pass3 = out.split("== Pass 3")[1]
    assert count_line(pass3, "pulled from HubSpot") == 0
    assert (tmp_path / "crmbridge-demo.db").exists()


def test_reading_a_missing_state_store_says_where_it_looked(tmp_path: Path) -> None:
    """`rejects list` without a state store exits 2 with the path and a hint, creating nothing."""
    result = crmbridge("rejects", "list", env=base_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "crmbridge.db") in result.stderr
    assert "hint:" in result.stderr
    assert not (tmp_path / "crmbridge.db").exists()


def test_refused_jwt_login_exits_3_with_salesforce_reason(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """A JWT login Salesforce refuses stops `sync` at start with exit 3 and its description."""
    key_file = tmp_path / "app.key"
    public = write_rsa_key(key_file)
    box.salesforce.oauth.register("cli-key", public)  # nobody pre-authorised
    env = {k: v for k, v in env.items() if not k.startswith("CRMBRIDGE_SALESFORCE__")}
    env.update(
        {
            "CRMBRIDGE_SALESFORCE__LOGIN_URL": box.salesforce_url,
            "CRMBRIDGE_SALESFORCE__CONSUMER_KEY": "cli-key",
            "CRMBRIDGE_SALESFORCE__USERNAME": "ops@acme.example",
            "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE": str(key_file),
            "CRMBRIDGE_SALESFORCE__CA_BUNDLE": box.salesforce.ca_path,
        }
    )
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 3
    assert "cannot start" in result.stderr
    assert "user hasn't approved this consumer" in result.stderr
    assert "Traceback" not in result.stderr


def test_proxy_page_instead_of_a_search_result_is_an_outage(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """HubSpot answering 200 with an HTML page ends the pass as an outage: exit 1, no traceback."""
    page = Response(200, "<html><body>Gateway error</body></html>", content_type="text/html")
    box.hubspot.faults.add(Fault("POST", "/search", page, times=2))
    env = {**env, "CRMBRIDGE_RETRY__MAX_ATTEMPTS": "2", "CRMBRIDGE_RETRY__MAX_WAIT_S": "0.1"}
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "not a search result" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "JSONDecodeError" not in result.stderr
