"""The reviewers' workflow against both simulators: an approved reject syncs as an exception on
the next pass, a later qualification resolves an escalated reject by itself, a replay after a
rule change marks what now passes and the next pass syncs it; the commands as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from crmbridge.ports import RejectFilter, StateStore
from crmbridge.review import Action, ReviewChange

from ._cli import base_env, crmbridge, start
from .conftest import MAPPINGS, World

EXCEPTION_FIELD = "CRMBridge_Exception__c"


def _store(world: World) -> StateStore:
    return world.app.pipeline.store


def _only_reject(world: World, contact: str) -> int:
    [record] = _store(world).rejects(RejectFilter(contact_id=contact))
    return record.id


def _cli(world: World, *args: str, **env: str) -> tuple[int, str, str]:
    done = crmbridge(
        *args,
        "--state-url",
        f"sqlite:///{world.state_path}",
        env={**base_env(), **env},
        cwd=world.state_path.parent,
    )
    return done.returncode, done.stdout, done.stderr


def test_an_approved_reject_syncs_as_an_exception_on_the_next_pass(world: World) -> None:
    """Approved: the next pass pushes it despite the rules, marked in the ledger and the Lead;
    the reject is resolved by crmbridge; a further pass pushes nothing."""
    contact = world.add(budget="30000")
    assert world.sync().rejected == 1
    reject_id = _only_reject(world, contact)
    [done] = _store(world).change_review(
        [reject_id], ReviewChange(Action.APPROVE, "ana", note="met them at the fair")
    )
    assert done.done
    upserts = world.upsert_calls()
    summary = world.sync()
    assert (summary.created, summary.exceptions, summary.rejudged) == (1, 1, 1)
    assert world.upsert_calls() == upserts + 1
    lead = world.lead(contact)
    assert lead is not None
    note = str(lead[EXCEPTION_FIELD])
    assert note.startswith("Exception approved by ana on 20")
    assert note.endswith(": met them at the fair")
    assert f"reject {reject_id}, rules bant-2026.2" in note
    synced = _store(world).decisions_of(contact)[-1]
    assert synced.exception is not None
    assert (synced.exception["approved_by"], synced.exception["rule_set_version"]) == (
        "ana",
        "bant-2026.2",
    )
    assert not synced.qualified  # the rules' verdict stays on record
    record = _store(world).reject(reject_id)
    assert record is not None
    assert (record.status, record.resolution) == ("resolved", "synced as exception")
    last = _store(world).audit_trail(reject_id)[-1]
    assert (last.actor, last.from_status, last.to_status) == ("crmbridge", "excepted", "resolved")
    again = world.sync()
    assert (again.created, again.updated, again.rejudged) == (0, 0, 0)
    assert world.upsert_calls() == upserts + 1


def test_a_later_qualification_resolves_an_escalated_reject_by_itself(world: World) -> None:
    """The contact qualifies in HubSpot later: synced, and its escalated reject resolved."""
    contact = world.add(budget="30000")
    world.sync()
    reject_id = _only_reject(world, contact)
    _store(world).change_review(
        [reject_id], ReviewChange(Action.ESCALATE, "ana", note="ask", assignee="sales-emea")
    )
    world.edit(contact, budget="$90,000")
    assert world.sync().created == 1
    record = _store(world).reject(reject_id)
    assert record is not None
    assert (record.status, record.resolution) == ("resolved", "synced later")
    trail = _store(world).audit_trail(reject_id)
    assert [(e.actor, e.from_status, e.to_status) for e in trail] == [
        ("ana", "open", "escalated"),
        ("crmbridge", "escalated", "resolved"),
    ]
    assert world.lead(contact) is not None
    assert (world.lead(contact) or {}).get(EXCEPTION_FIELD) is None


def _looser_mappings(tmp_path: Path) -> Path:
    """The shipped mappings with a budget threshold of 40,000 instead of 50,000."""
    target = tmp_path / "proposed"
    shutil.copytree(MAPPINGS, target)
    rules = target / "qualification.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(
        text.replace("version: bant-2026.2", "version: bant-looser").replace(
            "    value: 50000\n", "    value: 40000\n"
        ),
        encoding="utf-8",
    )
    return target


def test_replay_after_a_rule_change_marks_what_now_passes_and_the_next_pass_syncs_it(
    world: World, tmp_path: Path
) -> None:
    """Three rejects at 45,000 pass a 40,000 threshold; 10,000 does not; --apply marks the
    three, and the next pass (with the new rules) syncs exactly them with one upsert call."""
    passing = [world.add(budget="45000") for _ in range(3)]
    failing = world.add(budget="10000")
    assert world.sync().rejected == 4
    proposed = _looser_mappings(tmp_path)
    code, out, err = _cli(
        world, "rejects", "replay", "--mappings", str(proposed), "--format", "json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert (report["judged"], len(report["would_pass"]), report["marked"]) == (4, 3, [])
    assert report["by_criterion"] == {"budget": 3}
    searches, upserts = world.search_calls(), world.upsert_calls()
    code, out, err = _cli(
        world, "rejects", "replay", "--mappings", str(proposed), "--apply", "--as", "bo"
    )
    assert code == 0, err
    assert "Marked 3 for the next pass" in out
    assert (world.search_calls(), world.upsert_calls()) == (searches, upserts)  # no API call
    world.mappings = proposed
    world.restart()
    summary = world.sync()
    assert (summary.created, summary.rejudged, summary.exceptions) == (3, 3, 0)
    assert world.upsert_calls() == upserts + 1
    assert all(world.lead(c) is not None for c in passing)
    assert world.lead(failing) is None
    assert [r.decision.contact_id for r in _store(world).rejects(RejectFilter())] == [failing]
    first = _store(world).reject_ids(RejectFilter(contact_id=passing[0], include_resolved=True))
    trail = _store(world).audit_trail(first[0])
    assert [(e.actor, e.action, e.note) for e in trail[:1]] == [
        ("bo", "replay", "replay: passes BANT bant-looser")
    ]
    assert (trail[-1].from_status, trail[-1].to_status) == ("open", "resolved")


def test_bulk_dismiss_on_a_filter_and_refusals_per_id(world: World) -> None:
    """Dismissing by filter changes every match; approving a dismissed one is refused (exit 1)
    with its reason, while the others in the same command are changed."""
    budget = [world.add(budget="30000") for _ in range(2)]
    other = world.add(jobtitle="Intern")
    world.sync()
    code, out, err = _cli(
        world, "rejects", "dismiss", "--criterion", "budget", "--note", "too small", "--as", "ana"
    )
    assert code == 0, err
    assert "2 changed, 0 refused (by ana)." in out
    ids = [_only_reject_any(world, c) for c in budget]
    other_id = _only_reject(world, other)
    code, out, err = _cli(
        world, "rejects", "approve", str(ids[0]), str(other_id), "--note", "ok",
        CRMBRIDGE_REVIEWER="cy",
    )  # fmt: skip
    assert code == 1
    assert f"{ids[0]}: refused: cannot approve a reject that is dismissed (reopen it first)" in err
    assert f"{other_id}: open → excepted" in out
    assert "1 changed, 1 refused (by cy)." in out
    code, out, _ = _cli(world, "rejects", "list", "--status", "dismissed", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(int(r["id"]) for r in rows) == sorted(ids)
    assert {r["status"] for r in rows} == {"dismissed"}
    code, out, _ = _cli(world, "rejects", "show", str(ids[0]), "--format", "json")
    shown = json.loads(out)
    assert [(e["actor"], e["from"], e["to"], e["note"]) for e in shown["review"]] == [
        ("ana", "open", "dismissed", "too small")
    ]


def _only_reject_any(world: World, contact: str) -> int:
    [record] = _store(world).rejects(RejectFilter(contact_id=contact, include_resolved=True))
    return record.id


def test_escalate_shows_the_assignee_and_age_in_the_queue(world: World) -> None:
    """An escalated reject is in the default queue with to whom it went; without --to, refused."""
    contact = world.add(budget="30000")
    world.sync()
    reject_id = _only_reject(world, contact)
    code, _, err = _cli(world, "rejects", "escalate", str(reject_id), "--note", "x")
    assert code == 2
    assert "--to" in err
    code, out, err = _cli(
        world, "rejects", "escalate", str(reject_id), "--to", "sales-emea", "--note", "budget?"
    )
    assert code == 0, err
    code, out, _ = _cli(world, "rejects", "list")
    assert "escalated→sales-emea" in out
    code, out, _ = _cli(world, "rejects", "list", "--assignee", "sales-emea", "--format", "json")
    [listed] = json.loads(out)
    assert (listed["id"], listed["status"], listed["assignee"]) == (
        reject_id,
        "escalated",
        "sales-emea",
    )


def test_users_commands_add_list_change_and_remove(world: World) -> None:
    """A password from standard input; a short one refused (exit 2); a duplicate refused."""
    state = ("--state-url", f"sqlite:///{world.state_path}")

    def users(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crmbridge", "users", *args, *state],
            input=password + "\n",
            env=base_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert users("add", "ana", "--role", "reviewer", password="long enough 1").returncode == 0
    short = users("add", "bo", "--role", "viewer", password="short")
    assert short.returncode == 2
    assert "at least 10 characters" in short.stderr
    assert users("add", "ana", "--role", "admin", password="long enough 2").returncode == 1
    assert users("passwd", "ana", "--role", "admin", password="long enough 3").returncode == 0
    listed = users("list").stdout
    assert "ana" in listed
    assert "admin" in listed
    assert users("remove", "ana").returncode == 0
    assert "No users." in users("list").stdout


def test_report_audit_writes_one_html_page_and_csv(world: World, tmp_path: Path) -> None:
    """The audit of this month: an HTML file with its four charts, and CSV on stdout."""
    world.add(budget="30000")
    world.sync()
    period = datetime.now(UTC).strftime("%Y-%m")
    page = tmp_path / "audit.html"
    code, _, err = _cli(world, "report", "audit", "--month", period, "--out", str(page))
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 4
    assert "<script" not in html
    code, out, _ = _cli(world, "report", "audit", "--month", period, "--format", "csv")
    assert "total,,held back,1" in out.splitlines()
    code, _, err = _cli(world, "report", "audit", "--month", "2026-13")
    assert code == 2
    assert "there is no month 13" in err


def test_run_serves_the_console_beside_metrics_when_the_settings_ask(world: World) -> None:
    """CRMBRIDGE_CONSOLE__ENABLED=true: `run`'s one web server answers /console/login and
    /metrics; without the web server the setting is refused (exit 2)."""
    env = {
        **base_env(),
        "CRMBRIDGE_STATE_URL": f"sqlite:///{world.state_path}",
        "CRMBRIDGE_HUBSPOT__BASE_URL": world.hubspot.base_url,
        "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN": world.hubspot.access_token,
        "CRMBRIDGE_SALESFORCE__INSTANCE_URL": world.salesforce.url,
        "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN": world.salesforce.access_token,
        "CRMBRIDGE_SALESFORCE__CA_BUNDLE": world.salesforce.ca_path,
        "CRMBRIDGE_HTTP__PORT": "0",
        "CRMBRIDGE_CONSOLE__ENABLED": "true",
        "CRMBRIDGE_CONSOLE__SECURE_COOKIES": "false",
    }
    process = start("run", env=env, cwd=world.state_path.parent)
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None:
            assert time.monotonic() < deadline, "no http_serving line"
            line = process.stderr.readline()
            assert line, "crmbridge run ended before serving"
            if '"http_serving"' in line:
                url = json.loads(line)["url"]
        session = requests.Session()
        session.trust_env = False
        login = session.get(f"{url}/console/login", timeout=10)
        assert login.status_code == 200
        assert "Sign in" in login.text
        assert session.get(f"{url}/metrics", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    refused = crmbridge(
        "run", env={**env, "CRMBRIDGE_HTTP__ENABLED": "false"}, cwd=world.state_path.parent
    )
    assert refused.returncode == 2
    assert "CRMBRIDGE_CONSOLE__ENABLED" in refused.stderr
