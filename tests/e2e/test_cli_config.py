"""Wrong configuration is not an outage: the CLI exits 2 at start, naming what to fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox

from ._cli import base_env, crmbridge


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=20, seed=5, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> dict[str, str]:
    box.salesforce.reset()
    box.hubspot.reset()
    return {
        **base_env(),
        **box.environment(),
        "CRMBRIDGE_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "CRMBRIDGE_HUBSPOT__SEARCH_PER_S": "100",
    }


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
