"""Browser fixtures: both simulators and crmbridge wired to them (the e2e world), the console
served on a free loopback port, and Debian's chromium driven by Playwright (no download)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from crmbridge.console.serve import RunningConsole, start_console
from crmbridge.settings import ConsoleSettings, Settings
from crmbridge.users import hash_password
from tests.e2e.conftest import World, ca_dir, world  # noqa: F401 - fixtures used here

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium as the machine allows it: no sandbox as root, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Debian chromium (scripts/test.sh installs it when missing)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh (it installs Debian's chromium)")
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def console(world: World) -> Iterator[RunningConsole]:  # noqa: F811 - the e2e fixture
    """The console on the world's store (plain http on loopback), with a viewer and a
    reviewer."""
    store = world.app.pipeline.store
    store.save_user("vic", "viewer", hash_password(PASSWORD), new=True)
    store.save_user("rita", "reviewer", hash_password(PASSWORD), new=True)
    settings = Settings(
        state_url=f"sqlite:///{world.state_path}",
        console=ConsoleSettings(port=0, secure_cookies=False),
    )
    served = start_console(settings)
    try:
        yield served
    finally:
        served.close()
