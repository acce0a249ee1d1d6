"""Running the ``crmbridge`` command as a user does: a subprocess with its own environment."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from crmbridge.sandbox.runtime import Sandbox
from crmbridge.state import open_store

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120


def base_env() -> dict[str, str]:
    """The test process's environment without any CRMBRIDGE_ variable, plus the shipped map."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBRIDGE_")}
    env["CRMBRIDGE_MAPPINGS_DIR"] = str(REPO / "mappings")
    env["CRMBRIDGE_HTTP__PORT"] = "0"  # any free port: runs in parallel never clash
    return env


def sandbox_env(
    box: Sandbox, state_dir: Path, *, with_store: bool = True, **extra: str
) -> dict[str, str]:
    """The environment of a CLI run against ``box`` (its faults, counts and org reset), with
    the state store in ``state_dir``, made as `crmbridge state init` makes it unless
    ``with_store`` is false; ``extra`` variables last."""
    box.hubspot.reset()
    box.salesforce.reset()
    env = {
        **base_env(),
        **box.environment(),
        "CRMBRIDGE_STATE_URL": f"sqlite:///{state_dir / 'state.db'}",
        "CRMBRIDGE_HUBSPOT__SEARCH_PER_S": "100",
        **extra,
    }
    if with_store:
        open_store(env["CRMBRIDGE_STATE_URL"], create=True).close()
    return env


def crmbridge(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m crmbridge ARGS`` to completion and capture both streams."""
    return subprocess.run(
        [sys.executable, "-m", "crmbridge", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def start(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -m crmbridge ARGS`` in the background, both streams piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "crmbridge", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def count_line(output: str, label: str) -> int:
    """The number at the end of the summary line that starts with ``label``."""
    for line in output.splitlines():
        if line.strip().startswith(label):
            return int(line.split()[-1])
    raise AssertionError(f"no {label!r} line in:\n{output}")


def read_until(process: subprocess.Popen[str], event: str) -> str:
    """Read ``process``'s stderr (JSON logs) until a line names ``event``; return what was read.
    Fails when the process ends first or the line does not come within ``TIMEOUT_S``."""
    assert process.stderr is not None
    seen = ""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + TIMEOUT_S
        while f'"{event}"' not in seen:
            assert time.monotonic() < deadline, f"no {event} logged:\n{seen}"
            if selector.select(timeout=1):
                line = process.stderr.readline()
                assert line, f"crmbridge ended before logging {event}:\n{seen}"
                seen += line
    return seen


def run_until_logged(event: str, *, env: dict[str, str], cwd: Path) -> tuple[str, int, str]:
    """Start `crmbridge run` (JSON logs), read its stderr until a line names ``event``, then
    send SIGTERM; return (stderr until then, the exit code, the rest of stderr). Fails when the
    process ends first or the line does not come within ``TIMEOUT_S``."""
    with running("run", env=env, cwd=cwd) as process:
        seen = read_until(process, event)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        assert process.stderr is not None
        return seen, code, process.stderr.read()


@contextlib.contextmanager
def running(*args: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """``start(ARGS)``; on leaving, the process is killed if it still runs and its pipes
    closed."""
    process = start(*args, env=env, cwd=cwd)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
