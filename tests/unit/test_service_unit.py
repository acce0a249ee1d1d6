"""The shipped systemd unit agrees with the exit codes crmbridge documents."""

from __future__ import annotations

from pathlib import Path

from crmbridge.daemon import (
    EXIT_CONFIG,
    EXIT_CRASHED,
    EXIT_FATAL,
    EXIT_STATE_STORE,
    EXIT_STOPPED_EARLY,
)

UNIT = Path(__file__).resolve().parents[2] / "docker" / "crmbridge.service"


def settings() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in UNIT.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def test_unit_restarts_outages_and_crashes_but_not_what_needs_a_person() -> None:
    """Exit 2, 3 and 5 need a person (no restart); 1 and 4 are restarted by systemd."""
    unit = settings()
    assert unit["Restart"] == "on-failure"
    prevented = {int(code) for code in unit["RestartPreventExitStatus"].split()}
    assert prevented == {EXIT_CONFIG, EXIT_FATAL, EXIT_STATE_STORE}
    assert EXIT_CRASHED not in prevented
    assert EXIT_STOPPED_EARLY not in prevented
