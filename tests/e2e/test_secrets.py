"""No output stream ever holds a secret, whatever fails.

Each scenario runs the CLI as a subprocess, once with JSON logs and once with console logs, and
greps everything it wrote (stdout, stderr, logs) for every secret in play: both access tokens
(the right ones and wrong ones), a token issued by the JWT login, and the private key.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crmbridge.sandbox._server import Fault, Response
from crmbridge.sandbox.hubspot import HubSpotPortal, HubSpotSimulator
from crmbridge.sandbox.runtime import Sandbox
from crmbridge.sandbox.salesforce import SalesforceOrg, SalesforceSimulator
from crmbridge.sandbox.seed import seed_portal

from ._cli import TIMEOUT_S, sandbox_env
from .conftest import write_rsa_key

HUBSPOT_TOKEN = "pat-na1-HSSECRET-7f3a9c41"
SALESFORCE_TOKEN = "00DSFSECRET!AQ8x7Y2kLm"
WRONG_HUBSPOT = "pat-na1-WRONGHS-55e1"
WRONG_SALESFORCE = "00DWRONGSF!ZZ9"
ISSUED = "00DISSUEDSECRET!Qw3"
CONSUMER_KEY = "3MVG9-secrets-test"
USER = "ops@acme.example"

#: A crash inside the HTTP layer whose message quotes the Authorization header, as http.client's
#: "Invalid header value" did for a token ending in \r: the traceback must not carry it.
CRASH_IN_HTTP = """
import http.client
import sys

_putheader = http.client.HTTPConnection.putheader


def putheader(self, header, *values):
    if header.lower() == "authorization":
        raise ValueError("Invalid header value %r" % (values[0],))
    return _putheader(self, header, *values)


http.client.HTTPConnection.putheader = putheader
from crmbridge.cli import main

sys.argv = ["crmbridge", *sys.argv[1:]]
main()
"""


@dataclass
class Run:
    """One CLI run: its exit code and everything it wrote."""

    code: int
    output: str
    secrets: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    portal = HubSpotPortal()
    seed_portal(portal, count=30, seed=21)
    hubspot = HubSpotSimulator(portal, access_token=HUBSPOT_TOKEN)
    salesforce = SalesforceSimulator(
        SalesforceOrg(), access_token=SALESFORCE_TOKEN, ca_dir=tmp_path_factory.mktemp("ca")
    )
    with Sandbox(hubspot=hubspot, salesforce=salesforce) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory, box: Sandbox) -> Path:
    path = tmp_path_factory.mktemp("key") / "app.key"
    box.salesforce.oauth.register(CONSUMER_KEY, write_rsa_key(path), USER)
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Scenario = Callable[[Sandbox, dict[str, str], Path], tuple[dict[str, str], list[str]]]


def hubspot_401(box: Sandbox, env: dict[str, str], key: Path) -> tuple[dict[str, str], list[str]]:
    return {**env, "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN": WRONG_HUBSPOT}, ["sync", "--once"]


def salesforce_401(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    return {**env, "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN": WRONG_SALESFORCE}, ["sync", "--once"]


def jwt_env(box: Sandbox, env: dict[str, str], key: Path, user: str) -> dict[str, str]:
    env = {k: v for k, v in env.items() if not k.startswith("CRMBRIDGE_SALESFORCE__ACCESS")}
    return {
        **env,
        "CRMBRIDGE_SALESFORCE__LOGIN_URL": box.salesforce_url,
        "CRMBRIDGE_SALESFORCE__CONSUMER_KEY": CONSUMER_KEY,
        "CRMBRIDGE_SALESFORCE__USERNAME": user,
        "CRMBRIDGE_SALESFORCE__PRIVATE_KEY_FILE": str(key),
    }


def jwt_refused(box: Sandbox, env: dict[str, str], key: Path) -> tuple[dict[str, str], list[str]]:
    return jwt_env(box, env, key, "not-authorised@acme.example"), ["sync", "--once"]


def jwt_issues_a_malformed_token(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    answer = {"access_token": ISSUED + "\r\nX-Injected: 1", "instance_url": box.salesforce_url}
    box.salesforce.faults.add(Fault("POST", "/oauth2/token", Response(200, answer)))
    return jwt_env(box, env, key, USER), ["sync", "--once"]


def hubspot_refused_connection(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    url = f"http://127.0.0.1:{closed_port()}"
    return {**env, "CRMBRIDGE_HUBSPOT__BASE_URL": url}, ["sync", "--once"]


def salesforce_refused_connection(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    url = f"https://127.0.0.1:{closed_port()}"
    return {**env, "CRMBRIDGE_SALESFORCE__INSTANCE_URL": url}, ["validate"]


def salesforce_tls_failure(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    env = {k: v for k, v in env.items() if k != "CRMBRIDGE_SALESFORCE__CA_BUNDLE"}
    return env, ["sync", "--once"]


def token_with_a_line_break(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    broken = SALESFORCE_TOKEN[:8] + "\n" + SALESFORCE_TOKEN[8:]
    return {**env, "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN": broken}, ["sync", "--once"]


def tokens_from_a_crlf_file(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    return {
        **env,
        "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN": HUBSPOT_TOKEN + "\r",
        "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN": SALESFORCE_TOKEN + "\r\n",
    }, ["sync", "--once"]


def crash_in_the_http_layer(
    box: Sandbox, env: dict[str, str], key: Path
) -> tuple[dict[str, str], list[str]]:
    return env, ["--crash-in-http", "sync", "--once"]


def config_show(box: Sandbox, env: dict[str, str], key: Path) -> tuple[dict[str, str], list[str]]:
    return jwt_env(box, env, key, USER), ["config", "show"]


SCENARIOS: dict[str, tuple[Scenario, set[int]]] = {
    "hubspot 401": (hubspot_401, {3}),
    "salesforce 401": (salesforce_401, {3}),
    "jwt refused": (jwt_refused, {3}),
    "jwt answer with a malformed token": (jwt_issues_a_malformed_token, {0, 1}),
    "hubspot connection refused": (hubspot_refused_connection, {1}),
    "salesforce connection refused": (salesforce_refused_connection, {1}),
    "salesforce tls failure": (salesforce_tls_failure, {1, 3}),
    "token with a line break": (token_with_a_line_break, {2}),
    "tokens from a crlf file": (tokens_from_a_crlf_file, {0}),
    # A crashed pass: whatever code the daemon gives it, it is a failure, not 0 or 2.
    "crash in the http layer": (crash_in_the_http_layer, {1, 3, 4}),
    "config show": (config_show, {0}),
}


def run(env: dict[str, str], args: list[str], cwd: Path) -> Run:
    if args[0] == "--crash-in-http":
        command = [sys.executable, "-c", CRASH_IN_HTTP, *args[1:]]
    else:
        command = [sys.executable, "-m", "crmbridge", *args]
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    return Run(result.returncode, result.stdout + result.stderr)


def secrets_in_play(key: Path) -> list[str]:
    """Every secret a run may hold, and a distinctive piece of each (a cut-off copy is a leak)."""
    key_lines = [line for line in key.read_text(encoding="utf-8").splitlines() if "-" not in line]
    whole = [HUBSPOT_TOKEN, SALESFORCE_TOKEN, WRONG_HUBSPOT, WRONG_SALESFORCE, ISSUED]
    pieces = ["HSSECRET", "SFSECRET", "WRONGHS", "WRONGSF", "ISSUEDSECRET"]
    return whole + pieces + key_lines[:3]


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_output_stream_holds_a_secret(
    box: Sandbox, key_file: Path, tmp_path: Path, name: str, log_format: str
) -> None:
    """The scenario fails as expected, and nothing it printed or logged holds a secret."""
    env = sandbox_env(
        box,
        tmp_path,
        CRMBRIDGE_RETRY__MAX_ATTEMPTS="2",
        CRMBRIDGE_RETRY__MAX_WAIT_S="0.1",
        CRMBRIDGE_LOG_FORMAT=log_format,
        CRMBRIDGE_LOG_LEVEL="DEBUG",
    )
    scenario, codes = SCENARIOS[name]
    scenario_env, args = scenario(box, env, key_file)
    result = run(scenario_env, args, tmp_path)
    assert result.code in codes, result.output
    assert result.output.strip()
    leaked = [secret for secret in secrets_in_play(key_file) if secret in result.output]
    assert not leaked, f"{leaked} in:\n{result.output}"
