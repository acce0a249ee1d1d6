"""Start both simulators and point crmbridge's own settings at them: one code path, two sets of
endpoints (docs/settings.md#simulators). Used by ``crmbridge demo``, ``crmbridge sandbox serve``
and tests.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from crmbridge.sandbox._server import Served
from crmbridge.sandbox.hubspot import HubSpotPortal, HubSpotSimulator
from crmbridge.sandbox.salesforce import SalesforceOrg, SalesforceSimulator
from crmbridge.sandbox.seed import seed_portal


class Sandbox(Served):
    """A seeded HubSpot portal and an empty Salesforce org on loopback ports."""

    def __init__(
        self,
        *,
        contacts: int = 300,
        seed: int = 7,
        search_index_lag_ms: int = 0,
        ca_dir: Path | None = None,
        hubspot: HubSpotSimulator | None = None,
        salesforce: SalesforceSimulator | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if ca_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="crmbridge-sandbox-")
            ca_dir = Path(self._tmp.name)
        if hubspot is None:
            portal = HubSpotPortal(clock_ms=lambda: int(time.time() * 1000))
            if contacts:
                seed_portal(portal, count=contacts, seed=seed)
            hubspot = HubSpotSimulator(portal, search_index_lag_ms=search_index_lag_ms)
        self.hubspot = hubspot
        self.salesforce = salesforce or SalesforceSimulator(SalesforceOrg(), ca_dir=ca_dir)
        self.hubspot_url = ""
        self.salesforce_url = ""

    def start(self) -> Sandbox:
        self.hubspot_url = self.hubspot.start()
        self.salesforce_url = self.salesforce.start()
        return self

    def stop(self) -> None:
        self.hubspot.stop()
        self.salesforce.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def environment(self) -> dict[str, str]:
        """The ``CRMBRIDGE_…`` variables that point crmbridge at these simulators."""
        return {
            "CRMBRIDGE_HUBSPOT__BASE_URL": self.hubspot_url,
            "CRMBRIDGE_HUBSPOT__ACCESS_TOKEN": self.hubspot.access_token,
            "CRMBRIDGE_SALESFORCE__INSTANCE_URL": self.salesforce_url,
            "CRMBRIDGE_SALESFORCE__ACCESS_TOKEN": self.salesforce.access_token,
            "CRMBRIDGE_SALESFORCE__CA_BUNDLE": str(self.salesforce.ca_path),
        }
