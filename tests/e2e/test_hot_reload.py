"""Hot reload: edited mapping files reach a running pipeline between pages and passes, whole,
validated first (files and cached describe); an invalid edit is refused loudly and the last good
configuration keeps syncing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from structlog.testing import capture_logs

from crmbridge.bootstrap import App, build_app
from crmbridge.configuration import Configuration
from crmbridge.model import Outcome
from crmbridge.reload import ConfigReloader
from tests.e2e import _cli
from tests.e2e.conftest import MAPPINGS, World

OLD_VERSION = "bant-2026.2"


def _copy_mappings(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    # Filesystems with coarse timestamps: make the change visible to the size/mtime check.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _lower_budget(mappings: Path, version: str = "bant-2026.3") -> None:
    """The agreed change: a budget over 30,000 qualifies (was 50,000), under a new version."""
    rules = mappings / "qualification.yaml"
    _edit(rules, f"version: {OLD_VERSION}", f"version: {version}")
    _edit(rules, "op: gt\n    value: 50000", "op: gt\n    value: 30000")


def _app(world: World, mappings: Path, *, page_size: int = 100) -> App:
    """crmbridge on ``mappings`` with hot reload wired as ``crmbridge run`` wires it."""
    settings = world.settings()
    settings = settings.model_copy(
        update={
            "mappings_dir": mappings,
            "hubspot": settings.hubspot.model_copy(update={"page_size": page_size}),
        }
    )
    app = build_app(
        settings,
        sleep=world.slept.append,
        clock=world.clock.s,
        token_provider=world.salesforce.issue_token,
    )
    app.pipeline.config_updates = ConfigReloader(mappings, app.config)
    world._app = app
    return app


def _reloader(app: App) -> ConfigReloader:
    updates = app.pipeline.config_updates
    assert isinstance(updates, ConfigReloader)
    return updates


def _edit_before_page(reloader: ConfigReloader, page: int, edit: Callable[[], None]) -> None:
    """Make ``edit`` (an admin saving files) happen just before page ``page`` of a pass."""
    offered = reloader.candidate
    pages = {"n": 0}

    def candidate(pulling: frozenset[str] | None) -> Configuration | None:
        if pulling is not None:
            pages["n"] += 1
            if pages["n"] == page:
                edit()
        return offered(pulling)

    reloader.candidate = candidate  # type: ignore[method-assign]


def _versions(app: App, ids: list[str]) -> list[str]:
    return [app.store.decisions_of(i)[-1].rule_set_version for i in ids]


def test_a_valid_edit_applies_from_the_next_page_of_the_running_pass(
    world: World, tmp_path: Path
) -> None:
    """Rules edited while a pass runs judge the pages after the edit; the earlier pages keep
    the version that judged them, and the pass never stops."""
    mappings = _copy_mappings(tmp_path)
    ids = [world.add(modified_ago_s=600 - n, budget="$40,000") for n in range(30)]
    app = _app(world, mappings, page_size=10)
    # The admin saves while page 1 is being pushed.
    _edit_before_page(_reloader(app), 2, lambda: _lower_budget(mappings))
    reloader = _reloader(app)
    with capture_logs() as logs:
        summary = world.sync()

    assert summary.stopped_early is None
    assert summary.pulled == 30
    versions = _versions(app, ids)
    first_page = versions.count(OLD_VERSION)  # the source's first page (at most 10)
    assert 0 < first_page <= 10
    assert versions == [OLD_VERSION] * first_page + ["bant-2026.3"] * (30 - first_page)
    assert all(len(app.store.decisions_of(i)) == 1 for i in ids), "each judged once"
    outcomes = [app.store.decisions_of(i)[-1].outcome for i in ids]
    assert outcomes == [Outcome.REJECTED] * first_page + [Outcome.CREATED] * (30 - first_page)
    assert sum(world.lead(i) is not None for i in ids) == 30 - first_page
    reloaded = [e for e in logs if e["event"] == "config_reloaded"]
    assert [(e["previous_rules_version"], e["rules_version"]) for e in reloaded] == [
        (OLD_VERSION, "bant-2026.3")
    ]
    assert reloader.counts.applied == 1
    assert app.pipeline.config.rules.version == "bant-2026.3"


def test_an_invalid_edit_is_refused_once_with_its_line_and_the_old_rules_keep_syncing(
    world: World, tmp_path: Path
) -> None:
    """A broken file is logged with file:line, counted, not re-logged every pass; contacts go on
    being judged by the last good rules, and fixing the file applies it."""
    mappings = _copy_mappings(tmp_path)
    app = _app(world, mappings)
    rules = mappings / "qualification.yaml"
    _edit(rules, "op: gt\n    value: 50000", "op: greater\n    value: 50000")
    broken_line = next(
        n for n, line in enumerate(rules.read_text().splitlines(), 1) if "op: greater" in line
    )
    first = world.add(budget="$120,000")
    with capture_logs() as logs:
        world.sync()
        second = world.add(budget="$120,000")
        world.sync()

    refused = [e for e in logs if e["event"] == "config_reload_refused"]
    assert len(refused) == 1, "said once per content, not every pass"
    assert any(f"qualification.yaml:{broken_line}" in p for p in refused[0]["problems"])
    assert refused[0]["still_running"] == OLD_VERSION
    assert _versions(app, [first, second]) == [OLD_VERSION, OLD_VERSION]
    assert world.lead(first) is not None
    assert world.lead(second) is not None
    assert _reloader(app).counts.refused == 1

    _edit(rules, "op: greater", "op: gt")
    _edit(rules, f"version: {OLD_VERSION}", "version: bant-2026.3")
    third = world.add(budget="$120,000")
    world.sync()
    assert _versions(app, [third]) == ["bant-2026.3"]
    assert _reloader(app).counts.applied == 1


def test_an_edit_that_does_not_fit_the_cached_describe_is_refused(
    world: World, tmp_path: Path
) -> None:
    """A map naming a field the Salesforce object lacks is refused against the describe the
    pipeline already holds (no new call), and the old map keeps pushing."""
    mappings = _copy_mappings(tmp_path)
    app = _app(world, mappings)
    first = world.add()
    world.sync()
    describe_calls = world.salesforce.calls.count("GET /sobjects/Lead/describe")
    _edit(mappings / "fields.yaml", "  Phone: {from: phone", "  Phone_Nmbr__c: {from: phone")
    second = world.add()
    with capture_logs() as logs:
        world.sync()
    refused = [e for e in logs if e["event"] == "config_reload_refused"]
    assert len(refused) == 1
    assert any("Phone_Nmbr__c" in p and "fields.yaml:" in p for p in refused[0]["problems"])
    assert world.salesforce.calls.count("GET /sobjects/Lead/describe") == describe_calls
    assert world.lead(first) is not None
    assert world.lead(second) is not None
    assert app.pipeline.mapping.rules == app.config.mapping.rules


def test_changed_rules_under_an_unchanged_version_label_are_refused(
    world: World, tmp_path: Path
) -> None:
    """Two definitions of qualified never share a version label on decisions."""
    mappings = _copy_mappings(tmp_path)
    app = _app(world, mappings)
    rules = mappings / "qualification.yaml"
    _edit(rules, "op: gt\n    value: 50000", "op: gt\n    value: 30000")
    version_line = next(
        n for n, line in enumerate(rules.read_text().splitlines(), 1) if line.startswith("version:")
    )
    contact = world.add(budget="$40,000")
    with capture_logs() as logs:
        world.sync()
    refused = [e for e in logs if e["event"] == "config_reload_refused"]
    assert len(refused) == 1
    assert f"qualification.yaml:{version_line}" in refused[0]["problems"][0]
    assert "new `version:`" in refused[0]["problems"][0]
    assert app.store.decisions_of(contact)[-1].outcome is Outcome.REJECTED


def test_comment_only_edits_apply_silently_and_keep_the_version(
    world: World, tmp_path: Path
) -> None:
    """Editing comments changes no rule: nothing refused, the version stays."""
    mappings = _copy_mappings(tmp_path)
    app = _app(world, mappings)
    rules = mappings / "qualification.yaml"
    _edit(
        rules, "# B - Budget: more than 50,000 USD.", "# B - Budget: over 50k USD, agreed 2026-11."
    )
    with capture_logs() as logs:
        world.add()
        world.sync()
    assert not [e for e in logs if e["event"] == "config_reload_refused"]
    assert app.pipeline.config.rules.version == OLD_VERSION


def test_rules_reading_a_property_this_pass_does_not_pull_wait_for_the_next_pass(
    world: World, tmp_path: Path
) -> None:
    """A new criterion on a property not pulled in this pass is deferred, then applied at the
    next pass (which pulls it) rather than judging contacts without it."""
    mappings = _copy_mappings(tmp_path)
    ids = [world.add(modified_ago_s=600 - n, city="Lisbon") for n in range(4)]
    app = _app(world, mappings, page_size=2)
    rules = mappings / "qualification.yaml"

    def add_a_criterion() -> None:
        _edit(rules, f"version: {OLD_VERSION}", "version: bant-2026.3")
        _edit(
            rules,
            "criteria:\n",
            "criteria:\n  - name: located\n    property: city\n    op: present\n\n",
        )

    _edit_before_page(_reloader(app), 2, add_a_criterion)
    with capture_logs() as logs:
        world.sync()
    assert _versions(app, ids) == [OLD_VERSION] * 4
    deferred = [e for e in logs if e["event"] == "config_reload_deferred"]
    assert deferred
    assert deferred[0]["new_properties"] == ["city"]

    world.edit(ids[0], budget="$130,000")
    world.sync()
    assert _versions(app, ids[:1]) == ["bant-2026.3"]
    assert "city" in app.pipeline.config.pulled_properties


def test_sighup_re_reads_files_whose_size_and_time_did_not_change(tmp_path: Path) -> None:
    """The cheap size/mtime check can miss an edit (same size, restored time); SIGHUP's
    request() reads the files anyway."""
    mappings = _copy_mappings(tmp_path)
    from crmbridge.configuration import load_configuration  # noqa: PLC0415

    reloader = ConfigReloader(mappings, load_configuration(mappings))
    rules = mappings / "qualification.yaml"
    stat = rules.stat()
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("bant-2026.2", "bant-2026.9"), encoding="utf-8")
    os.utime(rules, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert rules.stat().st_size == stat.st_size
    assert reloader.candidate(None) is None
    reloader.request()
    candidate = reloader.candidate(None)
    assert candidate is not None
    assert candidate.rules.version == "bant-2026.9"


def _metrics_url(log: str) -> str:
    for line in log.splitlines():
        if '"http_serving"' in line:
            return str(json.loads(line)["url"]) + "/metrics"
    raise AssertionError(f"no http_serving line in:\n{log}")


@pytest.mark.slow
def test_the_daemon_reloads_on_sighup_and_refuses_a_broken_edit(tmp_path: Path) -> None:
    """`crmbridge run`: a broken edit is refused in its JSON log with file:line while the
    daemon keeps running; a fixed one applies after SIGHUP, between passes."""
    from crmbridge.sandbox.runtime import Sandbox  # noqa: PLC0415

    mappings = _copy_mappings(tmp_path)
    with Sandbox(contacts=20, seed=3, ca_dir=tmp_path / "ca") as box:
        env = _cli.sandbox_env(
            box,
            tmp_path,
            CRMBRIDGE_MAPPINGS_DIR=str(mappings),
            CRMBRIDGE_LOG_FORMAT="json",
            CRMBRIDGE_POLL_INTERVAL_S="3600",
        )
        with _cli.running("run", env=env, cwd=tmp_path) as process:
            seen = _cli.read_until(process, "pass_finished")
            url = _metrics_url(seen)
            assert 'crmbridge_rules_version_info{pipeline="default",version="bant-2026.2"} 1.0' in (
                requests.get(url, timeout=10).text
            )
            rules = mappings / "qualification.yaml"
            _edit(rules, "op: gt\n    value: 50000", "op: greater\n    value: 50000")
            process.send_signal(signal.SIGHUP)
            seen = _cli.read_until(process, "config_reload_refused")
            assert "qualification.yaml:" in seen
            assert process.poll() is None, "a refused edit never stops the daemon"
            _edit(rules, "op: greater", "op: gt")
            _edit(rules, f"version: {OLD_VERSION}", "version: bant-2026.3")
            time.sleep(0.1)
            process.send_signal(signal.SIGHUP)
            seen = _cli.read_until(process, "config_reloaded")
            assert '"rules_version": "bant-2026.3"' in seen
            metrics = requests.get(url, timeout=10).text
            for line in (
                'crmbridge_config_reloads_total{pipeline="default",result="refused"} 1.0',
                'crmbridge_config_reloads_total{pipeline="default",result="applied"} 1.0',
                'crmbridge_rules_version_info{pipeline="default",version="bant-2026.3"} 1.0',
            ):
                assert line in metrics
            assert 'version="bant-2026.2"' not in metrics
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
