"""Never frozen, always stoppable: SIGTERM ends `crmbridge run` promptly whatever it waits for.

The shipped systemd unit sends SIGTERM and kills the process 120 s later; each test below makes
crmbridge wait on something far longer than that (an answer that never comes with a 600 s read
timeout, a 250 s Retry-After) and checks that it exits soon after SIGTERM with 0 or 1.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox

from ._cli import count_line, crmbridge, sandbox_env, start
from .conftest import write_rsa_key

#: Far longer than a prompt stop needs, far shorter than the waits each test sets up.
EXIT_BOUND_S = 60
SEARCH = "POST /crm/v3/objects/contacts/search"
UPSERT = "PATCH /composite/sobjects/Lead/{extField}"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(contacts=30, seed=11, ca_dir=tmp_path_factory.mktemp("ca")) as sandbox:
        yield sandbox


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> dict[str, str]:
    return sandbox_env(
        box,
        tmp_path,
        CRMBRIDGE_HUBSPOT__READ_TIMEOUT_S="600",
        CRMBRIDGE_SALESFORCE__READ_TIMEOUT_S="600",
        CRMBRIDGE_STOP_GRACE_S="1",
        CRMBRIDGE_POLL_INTERVAL_S="3600",
    )


def stop_when(until: Callable[[], bool], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Start `crmbridge run`, send SIGTERM once ``until()`` holds, return (code, out, err)."""
    process = start("run", env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + EXIT_BOUND_S
        while not until():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the awaited call never came"
            time.sleep(0.05)
        time.sleep(0.3)  # let the call settle into its wait
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=EXIT_BOUND_S)
        return process.returncode, out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_sigterm_ends_a_hung_hubspot_call(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """A search that never answers (600 s read timeout) is abandoned after SIGTERM: exit 0."""
    box.hubspot.inject_hang(path_pattern="/search")
    code, _, err = stop_when(lambda: box.hubspot.calls.count(SEARCH) >= 1, env, tmp_path)
    assert code == 0, err
    assert "abandoned a call" in err
    assert "stop_requested" in err


def test_sigterm_ends_a_hung_salesforce_push_and_loses_nothing(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """An upsert that never answers is abandoned after SIGTERM; the next pass pushes the page."""
    box.salesforce.inject_hang(path_pattern="/composite/sobjects/")
    code, _, err = stop_when(lambda: box.salesforce.calls.count(UPSERT) >= 1, env, tmp_path)
    assert code == 0, err
    assert "abandoned a call" in err
    assert box.salesforce.org.leads == []
    again = crmbridge("sync", "--once", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert count_line(again.stdout, "synced: created") == len(box.salesforce.org.leads) > 0


def test_sigterm_cuts_a_retry_wait_short(box: Sandbox, env: dict[str, str], tmp_path: Path) -> None:
    """A 250 s Retry-After wait ends at SIGTERM, without another attempt."""
    box.hubspot.inject_rate_limit(retry_after_s=250, path_pattern="/search", times=5)
    code, _, err = stop_when(lambda: box.hubspot.calls.count(SEARCH) >= 1, env, tmp_path)
    assert code == 0, err
    assert "stop requested while waiting to retry" in err
    assert box.hubspot.calls.count(SEARCH) == 1


def test_sigterm_ends_a_hung_jwt_login_at_start(
    box: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    """A JWT login that never answers is abandoned at SIGTERM: `run` exits 1, "cannot start"."""
    key_file = tmp_path / "app.key"
    box.salesforce.oauth.register("stop-key", write_rsa_key(key_file), "ops@acme.example")
    box.salesforce.inject_hang(path_pattern="/oauth2/token")
    env = {k: v for k, v in env.items() if not k.startswith("CRMBRIDGE_SALESFORCE__ACCESS")}
    env.update(
        {
            "CRMBRIDGE_SALESFORCE__INSTANCE_URL": box.salesforce_url,
            "CRMBRIDGE_SALESFORCE__LOGIN_URL": box.salesforce_url,
            "CRMBRIDGE_SALESFORCE__CONSUMER_KEY": "stop-key",
            "CRMBRIDGE_SALESFORCE__USERNAME": "ops@acme.example",
            "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE": str(key_file),
        }
    )
    token_calls = "POST /services/oauth2/token"
    code, _, err = stop_when(lambda: box.salesforce.calls.count(token_calls) >= 1, env, tmp_path)
    assert code == 1, err
    assert "cannot start" in err
    assert "abandoned a call" in err
