"""The container's install, without a Docker engine: the wheel installed by docker/install.sh
(the script the Dockerfile runs) into a fresh virtual environment, then its entry point run
against the simulators with settings from the environment and secret files only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox

from ._cli import REPO, TIMEOUT_S, count_line, sandbox_env

DOCKER = REPO / "docker"
INSTALL_TIMEOUT_S = 900


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        args, capture_output=True, text=True, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the built wheel installed as the image installs it;
    its ``bin`` directory."""
    root = tmp_path_factory.mktemp("image")
    wheels = root / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(REPO)],
        timeout=INSTALL_TIMEOUT_S,
    )
    assert built.returncode == 0, built.stderr
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], timeout=TIMEOUT_S)
    assert made.returncode == 0, made.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBRIDGE_")}
    install = _run(
        ["sh", str(DOCKER / "install.sh"), str(wheels), str(venv / "bin" / "python")],
        timeout=INSTALL_TIMEOUT_S,
        env=env,
    )
    assert install.returncode == 0, install.stderr
    assert install.stdout.startswith("crmbridge, version ")
    return venv / "bin"


def test_the_dockerfile_installs_with_the_shared_script() -> None:
    """The Dockerfile runs docker/install.sh on the wheel, as the test below does, runs as a
    non-root user and checks /healthz with docker/healthcheck.py."""
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert "RUN sh /usr/local/lib/crmbridge/install.sh /wheels" in dockerfile
    assert "\nUSER crmbridge\n" in dockerfile
    assert "/usr/local/lib/crmbridge/healthcheck.py" in dockerfile.split("HEALTHCHECK", 1)[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_installed_entry_point_syncs_and_serves_its_healthcheck(
    installed: Path, tmp_path: Path
) -> None:
    """The installed `crmbridge` makes its store, syncs once against the simulators with the
    tokens read from secret files, then `run` passes the image's HEALTHCHECK and ends on
    SIGTERM with 0."""
    with Sandbox(contacts=60, seed=11, ca_dir=tmp_path / "ca") as box:
        env = sandbox_env(box, tmp_path, with_store=False)
        for name in ("CRMBRIDGE_HUBSPOT__ACCESS_TOKEN", "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN"):
            secret = tmp_path / name.lower()
            secret.write_text(env.pop(name) + "\n", encoding="utf-8")
            env[f"{name}_FILE"] = str(secret)
        env["CRMBRIDGE_HTTP__PORT"] = str(_free_port())
        crmbridge = str(installed / "crmbridge")
        made = _run([crmbridge, "state", "init"], env=env, cwd=tmp_path, timeout=TIMEOUT_S)
        assert made.returncode == 0, made.stderr
        synced = _run([crmbridge, "sync", "--once"], env=env, cwd=tmp_path, timeout=TIMEOUT_S)
        assert synced.returncode == 0, synced.stderr
        assert count_line(synced.stdout, "synced: created") == len(box.salesforce.org.leads) > 0

        process = subprocess.Popen(
            [crmbridge, "run"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stderr is not None
            line = ""
            deadline = time.monotonic() + TIMEOUT_S
            while '"http_serving"' not in line:
                assert time.monotonic() < deadline
                line = process.stderr.readline()
                assert line, "crmbridge run ended before serving"
            assert json.loads(line)["port"] == int(env["CRMBRIDGE_HTTP__PORT"])
            probe = _run(
                [str(installed / "python"), str(DOCKER / "healthcheck.py")],
                env=env,
                timeout=TIMEOUT_S,
            )
            assert probe.returncode == 0, probe.stderr
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stderr.close()  # type: ignore[union-attr]
        # Nothing answers any more: the probe says unhealthy.
        gone = _run(
            [str(installed / "python"), str(DOCKER / "healthcheck.py")], env=env, timeout=60
        )
        assert gone.returncode == 1
