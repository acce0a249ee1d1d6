"""End-to-end fixtures: both simulators on loopback, crmbridge wired to them by its settings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import SecretStr

from crmbridge.bootstrap import App, build_app
from crmbridge.model import PassSummary
from crmbridge.sandbox.hubspot import HubSpotPortal, HubSpotSimulator
from crmbridge.sandbox.salesforce import SalesforceOrg, SalesforceSimulator
from crmbridge.settings import HubSpotSettings, RetrySettings, SalesforceSettings, Settings
from crmbridge.state import open_store

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "mappings"
T0_MS = 1_790_000_000_000  # a fixed "now" for the portal and the pipeline

QUALIFIED = {
    "firstname": "Ana",
    "lastname": "Lima",
    "company": "Acme Tools",
    "jobtitle": "CFO",
    "industry": "MANUFACTURING",
    "budget": "$120,000",
    "need": "Our supply chain has no visibility",
    "timeline_days": "90",
    "lifecyclestage": "marketingqualifiedlead",
}


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def set_env_ca_bundles(monkeypatch: pytest.MonkeyPatch, *, present: bool) -> None:
    """Set (or remove) REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, which override trust in requests."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if present:
            monkeypatch.setenv(name, SYSTEM_BUNDLE)
        else:
            monkeypatch.delenv(name, raising=False)


def write_private_key(
    path: Path, key: PrivateKeyTypes, *, passphrase: bytes | None = None
) -> bytes:
    """Write ``key`` (PEM, PKCS#8, encrypted when a pass phrase is given) to ``path``; return
    its public key (PEM)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_rsa_key(path: Path) -> bytes:
    """Write a new RSA private key (PEM) to ``path``; return its public key (PEM)."""
    return write_private_key(path, rsa.generate_private_key(public_exponent=65537, key_size=2048))


class Clock:
    """A hand-moved clock shared by the portal (ms) and the pipeline (s)."""

    def __init__(self, start_ms: int = T0_MS) -> None:
        self.now_ms = start_ms

    def ms(self) -> int:
        return self.now_ms

    def s(self) -> float:
        return self.now_ms / 1000

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@dataclass
class World:
    """One HubSpot portal, one Salesforce org, and crmbridge pointed at them."""

    clock: Clock
    portal: HubSpotPortal
    hubspot: HubSpotSimulator
    salesforce: SalesforceSimulator
    state_path: Path
    slept: list[float] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _app: App | None = None
    #: The mappings directory crmbridge reads (the shipped one unless a test writes its own).
    mappings: Path = MAPPINGS

    def settings(self, **retry: float) -> Settings:
        return Settings(
            hubspot=HubSpotSettings(
                base_url=self.hubspot.base_url,
                access_token=SecretStr(self.hubspot.access_token),
                index_lag_s=60,
                search_per_s=10_000,
            ),
            salesforce=SalesforceSettings(
                instance_url=self.salesforce.url,
                access_token=SecretStr(self.salesforce.access_token),
                ca_bundle=Path(self.salesforce.ca_path),
            ),
            retry=RetrySettings(**retry) if retry else RetrySettings(),
            state_url=f"sqlite:///{self.state_path}",
            mappings_dir=self.mappings,
        )

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = build_app(
                self.settings(),
                sleep=self.slept.append,
                clock=self.clock.s,
                token_provider=self.salesforce.issue_token,
            )
        return self._app

    def restart(self) -> App:
        """Drop the running app (as a process restart would) and build a new one."""
        self.close()
        return self.app

    def sync(self) -> PassSummary:
        """Move time past the index-lag margin, then run one pass."""
        self.clock.advance(61)
        return self.app.pipeline.run_pass()

    def add(self, modified_ago_s: float = 120, **properties: str | None) -> str:
        """Add a contact (qualified unless overridden), stamped ``modified_ago_s`` ago."""
        n = next(self._ids)
        values: dict[str, str | None] = {**QUALIFIED, "email": f"lead{n}@example.com"}
        values.update(properties)
        return self.portal.add_contact(
            values, modified_at_ms=self.clock.ms() - int(modified_ago_s * 1000)
        )

    def edit(self, contact_id: str, **properties: str | None) -> None:
        self.portal.update_contact(contact_id, dict(properties), modified_at_ms=self.clock.ms())

    def lead(self, contact_id: str) -> dict[str, object] | None:
        return self.salesforce.org.get_by_external_id(contact_id)

    def upsert_calls(self) -> int:
        return self.salesforce.calls.count("PATCH /composite/sobjects/Lead/{extField}")

    def search_calls(self) -> int:
        return self.hubspot.calls.count("POST /crm/v3/objects/contacts/search")

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ca")


@pytest.fixture
def world(tmp_path: Path, ca_dir: Path) -> Iterator[World]:
    clock = Clock()
    portal = HubSpotPortal(clock_ms=clock.ms)
    hubspot = HubSpotSimulator(portal)
    salesforce = SalesforceSimulator(SalesforceOrg(), ca_dir=ca_dir)
    hubspot.start()
    salesforce.start()
    w = World(clock, portal, hubspot, salesforce, tmp_path / "state.db")
    open_store(f"sqlite:///{w.state_path}", create=True).close()  # as `crmbridge state init`
    try:
        yield w
    finally:
        w.close()
        hubspot.stop()
        salesforce.stop()
