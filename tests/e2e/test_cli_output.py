"""What the reject-log commands print for hostile HubSpot values; the paging they refuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.sandbox.runtime import Sandbox

from ._cli import crmbridge, sandbox_env
from .conftest import QUALIFIED

HOSTILE = "\x1b[2J\x1b[H\x1b[31mPWNED\x1b[0m\x1b]0;owned\x07\r\n\x9b31m\u202eX"
BREAKERS = "Acme\nTools\rLtd\tGmbH\bX\x9b31m\u202eevil"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A state store holding the reject of one contact with hostile values (and 19 others)."""
    tmp = tmp_path_factory.mktemp("cli-output")
    with Sandbox(contacts=0, ca_dir=tmp_path_factory.mktemp("ca")) as box:
        portal = box.hubspot.portal
        portal.add_contact(
            {
                **QUALIFIED,
                "email": "hostile@example.com",
                "jobtitle": HOSTILE,
                "company": BREAKERS,
            },
            modified_at_ms=portal.clock_ms() - 120_000,
        )
        for n in range(19):
            portal.add_contact(
                {**QUALIFIED, "email": f"lead{n}@example.com", "jobtitle": "Analyst"},
                modified_at_ms=portal.clock_ms() - 120_000,
            )
        env = sandbox_env(box, tmp)
        result = crmbridge("sync", "--once", env=env, cwd=tmp)
        assert result.returncode == 0, result.stderr
        yield env, tmp


def assert_terminal_safe(text: str) -> None:
    """No control character but newlines, no bidi control, no lone surrogate."""
    bad = [
        ch
        for ch in text
        if (ord(ch) < 0x20 and ch != "\n")
        or 0x7F <= ord(ch) <= 0x9F
        or 0x202A <= ord(ch) <= 0x202E
        or 0xD800 <= ord(ch) <= 0xDFFF
    ]
    assert not bad, bad


def hostile_id(env: dict[str, str], cwd: Path) -> int:
    listed = crmbridge("rejects", "list", "--format", "json", env=env, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    return next(r["id"] for r in records if r["email"] == "hostile@example.com")


def test_rejects_list_shows_control_characters_escaped(
    synced: tuple[dict[str, str], Path],
) -> None:
    """`rejects list` prints the hostile job title on a single table row: the reason quotes it
    as the rules read it (C0 escape codes removed), and what is left is shown escaped."""
    env, cwd = synced
    result = crmbridge("rejects", "list", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result.stdout)
    rows = [line for line in result.stdout.splitlines() if "hostile@example.com" in line]
    assert len(rows) == 1
    assert 'job title "[2J[H[31mPWNED[0m]0;owned\\r\\n\\x9b31m\\u202eX"' in rows[0]


def test_rejects_show_shows_control_characters_escaped(
    synced: tuple[dict[str, str], Path],
) -> None:
    """`rejects show` escapes the reason and every input it read."""
    env, cwd = synced
    result = crmbridge("rejects", "show", str(hostile_id(env, cwd)), env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result.stdout)
    assert "\\x1b[2J\\x1b[H\\x1b[31mPWNED\\x1b[0m\\x1b]0;owned\\x07" in result.stdout
    assert 'company: "Acme\\nTools\\rLtd\\tGmbH\\x08X\\x9b31m\\u202eevil"' in result.stdout


def test_rejects_json_keeps_exact_values(synced: tuple[dict[str, str], Path]) -> None:
    """`rejects show --format json` gives the exact values back."""
    env, cwd = synced
    result = crmbridge(
        "rejects", "show", str(hostile_id(env, cwd)), "--format", "json", env=env, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result.stdout)
    record = json.loads(result.stdout)
    assert record["inputs"]["jobtitle"] == HOSTILE
    assert record["inputs"]["company"] == BREAKERS


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--offset", "-5", "-5 is not in the range x>=0"),
        ("--limit", "0", "0 is not in the range"),
        ("--limit", "-1", "-1 is not in the range"),
    ],
)
def test_rejects_list_refuses_impossible_paging(
    synced: tuple[dict[str, str], Path], option: str, value: str, message: str
) -> None:
    """A negative offset or a limit below 1 is refused with exit 2 and the option's name."""
    env, cwd = synced
    result = crmbridge("rejects", "list", option, value, env=env, cwd=cwd)
    assert result.returncode == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert message in result.stderr
    assert "of 20" not in result.stdout
    assert "No rejects match" not in result.stdout


def test_rejects_list_pages_count_from_one(synced: tuple[dict[str, str], Path]) -> None:
    """The footer of a page names its first and last row and the total."""
    env, cwd = synced
    result = crmbridge("rejects", "list", "--offset", "5", "--limit", "3", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "6-8 of 20." in result.stdout
