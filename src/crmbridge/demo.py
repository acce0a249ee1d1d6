"""``crmbridge demo``: the whole main job against the built-in simulators, narrated.

Three passes over one seeded portal: the backfill, a pass after a few edits in HubSpot (one
rejected lead now qualifies, one synced lead changes), and a pass with nothing new, which
pushes nothing. The same pipeline and adapters as production; only the endpoints differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from crmbridge import reports
from crmbridge.bootstrap import build_app
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.sandbox.runtime import Sandbox
from crmbridge.settings import Settings
from crmbridge.state import open_store, sqlite_path
from crmbridge.text import visible

#: The demo edits contacts and syncs again at once, so its safety margin is short.
DEMO_INDEX_LAG_S = 1.0
DEMO_SEARCH_LAG_MS = 300

QUALIFYING_EDIT = {
    "budget": "$120,000",
    "jobtitle": "CFO",
    "industry": "MANUFACTURING",
    "need": "Our supply chain has no visibility across plants",
    "timeline_days": "60",
}

Echo = Callable[[str], None]


def _fresh_state(settings: Settings) -> Path:
    """Delete the demo's state file and make a new, empty store there."""
    path = sqlite_path(settings.state_url)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    open_store(settings.state_url, create=True).close()
    return path


def pointed_at(settings: Settings, box: Sandbox) -> Settings:
    """``settings`` with both endpoints replaced by the sandbox's."""
    env = box.environment()
    hubspot = settings.hubspot.model_copy(
        update={
            "base_url": env["CRMBRIDGE_HUBSPOT__BASE_URL"],
            "access_token": SecretStr(env["CRMBRIDGE_HUBSPOT__ACCESS_TOKEN"]),
            "index_lag_s": DEMO_INDEX_LAG_S,
            "search_per_s": 50.0,
        }
    )
    salesforce = settings.salesforce.model_copy(
        update={
            "instance_url": env["CRMBRIDGE_SALESFORCE__INSTANCE_URL"],
            "access_token": SecretStr(env["CRMBRIDGE_SALESFORCE__ACCESS_TOKEN"]),
            "ca_bundle": Path(env["CRMBRIDGE_SALESFORCE__CA_BUNDLE"]),
        }
    )
    return settings.model_copy(update={"hubspot": hubspot, "salesforce": salesforce})


def example_mappings() -> Path:
    """The example mappings: the repository's ``mappings/`` or the copy inside the wheel."""
    packaged = Path(__file__).resolve().parent / "example_mappings"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "mappings"


def run_demo(settings: Settings, *, contacts: int, echo: Echo) -> int:
    """Run the narrated demo; return the exit code."""
    if not settings.mappings_dir.is_dir():
        settings = settings.model_copy(update={"mappings_dir": example_mappings()})
    state_path = _fresh_state(settings)
    with Sandbox(contacts=contacts, search_index_lag_ms=DEMO_SEARCH_LAG_MS) as box:
        demo_settings = pointed_at(settings, box)
        app = build_app(demo_settings)
        try:
            echo(f"HubSpot simulator    {box.hubspot_url}  ({contacts} seeded contacts)")
            echo(f"Salesforce simulator {box.salesforce_url}  (empty org, TLS with a local CA)")
            echo(f"State                {state_path}")
            echo(f"Mappings             {settings.mappings_dir}")
            echo(f"Rules                {app.config.rules.name} version {app.config.rules.version}")
            echo("\n== Pass 1: backfill ==")
            started = time.monotonic()
            first = app.pipeline.run_pass()
            echo(reports.summary_text(first, elapsed_s=time.monotonic() - started))
            if first.stopped_early:
                return 1

            edited = _edit_some_contacts(box, app.store, echo)
            time.sleep(DEMO_INDEX_LAG_S + DEMO_SEARCH_LAG_MS / 1000 + 0.2)
            echo("\n== Pass 2: after edits in HubSpot ==")
            started = time.monotonic()
            second = app.pipeline.run_pass()
            echo(reports.summary_text(second, elapsed_s=time.monotonic() - started))
            for contact_id in edited:
                latest = app.store.decisions_of(contact_id)[-1]
                echo(f"  contact {contact_id}: {latest.outcome.value}")

            echo("\n== Pass 3: nothing changed ==")
            third = app.pipeline.run_pass()
            echo(reports.summary_text(third))
            echo(f"\nSalesforce org now holds {len(box.salesforce.org.leads)} leads.")
            _show_rejects(app.store, echo)
            url = settings.state_url
            echo("\nNext: look at the reject log yourself:")
            echo(f"  crmbridge rejects list --state-url {url}")
            echo(f"  crmbridge rejects show ID --state-url {url}")
            echo(f"  crmbridge status --state-url {url}")
            echo(f"  crmbridge flagged --state-url {url}")
            tiers = settings.mappings_dir / "examples" / "qualification-tiers.yaml"
            echo("Try a rule change on these leads first (no API call, nothing written):")
            echo(
                f"  crmbridge whatif --rules {tiers} --mappings {settings.mappings_dir} "
                f"--state-url {url}"
            )
        finally:
            app.close()
    return 0


def _edit_some_contacts(box: Sandbox, store: StateStore, echo: Echo) -> list[str]:
    """Make one rejected lead qualify and give one synced lead a new phone, in the portal."""
    edited: list[str] = []
    rejects = store.rejects(RejectFilter(stage="qualification", limit=200))
    for record in rejects:
        decision = record.decision
        # Only the rules held it back: its data already maps onto a valid Lead.
        if not any(r.criterion.startswith("mapping.") for r in decision.reasons):
            box.hubspot.portal.update_contact(decision.contact_id, dict(QUALIFYING_EDIT))
            echo(
                f"\nEdited contact {decision.contact_id} in HubSpot (was rejected: "
                f"{visible(decision.reasons[0].message)}); it now meets every criterion."
            )
            edited.append(decision.contact_id)
            break
    for contact_id in store.contacts_with_status("synced", limit=1):
        box.hubspot.portal.update_contact(contact_id, {"phone": "+1 555 0100"})
        echo(f"Edited contact {contact_id} in HubSpot (synced earlier): new phone number.")
        edited.append(contact_id)
    return edited


def _show_rejects(store: StateStore, echo: Echo) -> None:
    query = RejectFilter(limit=5)
    echo("\nNewest open rejects:")
    echo(reports.rejects_table(store.rejects(query), total=store.count_rejects(query), offset=0))
