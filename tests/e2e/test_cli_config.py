"""Wrong configuration is not an outage: the CLI exits 2 at start, naming what to fix."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox

from ._cli import REPO, crmbridge, sandbox_env


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=20, seed=5, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> dict[str, str]:
    return sandbox_env(box, tmp_path)


def assert_config_error(result: object, *needles: str) -> None:
    """Exit 2, each needle on stderr with a hint, no traceback, nothing pushed or pulled."""
    assert getattr(result, "returncode", None) == 2, result
    stderr = getattr(result, "stderr", "")
    assert "configuration error" in stderr
    assert "hint:" in stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr


@pytest.mark.parametrize(
    ("command", "variable", "value", "needle"),
    [
        ("sync", "CRMBRIDGE_SALESFORCE__API_VERSION", "59", "write 59.0"),
        ("sync", "CRMBRIDGE_SALESFORCE__API_VERSION", "nan", "59.0"),
        ("sync", "CRMBRIDGE_SALESFORCE__API_VERSION", "inf", "59.0"),
        ("sync", "CRMBRIDGE_SALESFORCE__API_VERSION", "1e3", "59.0"),
        ("sync", "CRMBRIDGE_HUBSPOT__BASE_URL", "http://", "host"),
        ("sync", "CRMBRIDGE_SALESFORCE__INSTANCE_URL", "https://", "host"),
        ("sync", "CRMBRIDGE_HUBSPOT__INDEX_LAG_S", "inf", "finite"),
        ("run", "CRMBRIDGE_POLL_INTERVAL_S", "inf", "finite"),
        ("run", "CRMBRIDGE_POLL_INTERVAL_S", "1e12", "less than or equal to"),
    ],
)
def test_wrong_setting_exits_2_before_any_call(
    box: Sandbox,
    env: dict[str, str],
    tmp_path: Path,
    command: str,
    variable: str,
    value: str,
    needle: str,
) -> None:
    """A setting that would fail every pass stops crmbridge at start, naming it, with a hint."""
    args = ("sync", "--once") if command == "sync" else ("run",)
    result = crmbridge(*args, env={**env, variable: value}, cwd=tmp_path)
    assert_config_error(result, variable, needle)
    assert box.hubspot.calls.count() == 0
    assert box.salesforce.calls.count() == 0


def edited_mappings(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """A copy of the shipped mappings with ``old`` replaced by ``new`` in fields.yaml; the
    directory and the 1-based line of the edit."""
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    fields = mappings / "fields.yaml"
    lines = fields.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith(old))
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    fields.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return mappings, number


def test_unknown_object_is_a_config_error_at_its_line(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """`object: Leed` makes the describe answer NOT_FOUND: exit 2 at fields.yaml's object line."""
    mappings, line = edited_mappings(tmp_path, "object: Lead", "object: Leed")
    env = {**env, "CRMBRIDGE_MAPPINGS_DIR": str(mappings)}
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert_config_error(result, f"fields.yaml:{line}", '"Leed"')
    assert box.hubspot.calls.count() == 0
    assert box.salesforce.org.leads == []


def test_version_the_org_does_not_serve_is_a_config_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An API version the org does not serve names the variable and the versions it does."""
    env = {**env, "CRMBRIDGE_SALESFORCE__API_VERSION": "99.0"}
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert_config_error(result, "CRMBRIDGE_SALESFORCE__API_VERSION", "99.0", "64.0")


def test_validate_checks_the_live_describe_when_credentials_are_set(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """`validate` finds a field Salesforce does not have, at its line, before the daemon starts."""
    mappings, line = edited_mappings(tmp_path, "  Title:", "  Titel:")
    env = {**env, "CRMBRIDGE_MAPPINGS_DIR": str(mappings)}
    result = crmbridge("validate", env=env, cwd=tmp_path)
    assert_config_error(result, f"fields.yaml:{line}", "Titel")
    assert box.salesforce.calls.count("GET /sobjects/Lead/describe") == 1


def test_validate_says_what_it_checked(box: Sandbox, env: dict[str, str], tmp_path: Path) -> None:
    """A good map is reported checked against the describe; without credentials, files only."""
    checked = crmbridge("validate", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "checked against Salesforce's describe of Lead" in checked.stdout
    offline = {k: v for k, v in env.items() if not k.startswith("CRMBRIDGE_SALESFORCE__")}
    files = crmbridge("validate", env=offline, cwd=tmp_path)
    assert files.returncode == 0, files.stderr
    assert "only the files were checked" in files.stdout
    assert "CRMBRIDGE_SALESFORCE__INSTANCE_URL" in files.stdout
    flagged = crmbridge("validate", "--files-only", env=env, cwd=tmp_path)
    assert flagged.returncode == 0, flagged.stderr
    assert "only the files were checked" in flagged.stdout
    assert box.salesforce.calls.count("GET /sobjects/Lead/describe") == 1


def test_validate_with_a_wrong_object_fails_like_the_daemon_would(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`validate` reports `object: Leed` at its line, so ExecStartPre stops the unit."""
    mappings, line = edited_mappings(tmp_path, "object: Lead", "object: Leed")
    result = crmbridge(
        "validate", env={**env, "CRMBRIDGE_MAPPINGS_DIR": str(mappings)}, cwd=tmp_path
    )
    assert_config_error(result, f"fields.yaml:{line}", '"Leed"')


def test_validate_with_refused_credentials_exits_3(env: dict[str, str], tmp_path: Path) -> None:
    """A token Salesforce refuses makes `validate` exit 3, saying the files themselves are fine."""
    env = {**env, "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN": "00D-not-a-session"}
    result = crmbridge("validate", env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "the files are fine" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_with_salesforce_unreachable_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    """An outage during `validate` is exit 1 (systemd restarts the unit), not a config error."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        **env,
        "CRMBRIDGE_SALESFORCE__INSTANCE_URL": f"https://127.0.0.1:{port}",
        "CRMBRIDGE_RETRY__MAX_ATTEMPTS": "2",
        "CRMBRIDGE_RETRY__MAX_WAIT_S": "0.1",
    }
    result = crmbridge("validate", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "the files are fine" in result.stderr
    assert "connection failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_unparseable_private_key_exits_2_naming_the_variable(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """A PEM key that cannot be parsed stops `sync` at start with exit 2, no jwt traceback."""
    key_file = tmp_path / "app.key"
    key_file.write_text(
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", encoding="utf-8"
    )
    env = {k: v for k, v in env.items() if not k.startswith("CRMBRIDGE_SALESFORCE__")}
    env.update(
        {
            "CRMBRIDGE_SALESFORCE__LOGIN_URL": box.salesforce_url,
            "CRMBRIDGE_SALESFORCE__CONSUMER_KEY": "key",
            "CRMBRIDGE_SALESFORCE__USERNAME": "ops@acme.example",
            "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE": str(key_file),
        }
    )
    result = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert_config_error(result, "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE", "no readable PEM")
    assert "bm90IGEga2V5" not in result.stderr
    assert box.salesforce.calls.count() == 0
