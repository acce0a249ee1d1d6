"""Screenshots of every console page, for docs/console/ (and for looking at while building it).

Usage: .venv/bin/python scripts/console_screenshots.py URL ADMIN:PASSWORD VIEWER:PASSWORD OUTDIR

URL is a running console (`crmbridge console`), e.g. http://127.0.0.1:8080. Drives Debian's
chromium (/usr/bin/chromium) through Playwright; nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sign_in(page: Page, base: str, who: str) -> None:
    name, password = who.split(":", 1)
    page.goto(f"{base}/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def main() -> None:
    base, admin, viewer, out = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/console/login")
        page.screenshot(path=out / "01-login.png")
        sign_in(page, base, admin)
        page.screenshot(path=out / "02-queue.png", full_page=True)
        page.goto(
            f"{base}/console/?status=open&status=escalated&criterion=budget&source=PAID_SEARCH"
        )
        page.screenshot(path=out / "03-queue-filtered.png", full_page=True)
        first = page.locator("tbody tr td a").first
        first.click()
        page.screenshot(path=out / "04-detail.png", full_page=True)
        page.fill("form:has(input[value=escalate]) input[name=assignee]", "sales-emea")
        page.fill("form:has(input[value=escalate]) textarea[name=note]", "Budget unclear: ask")
        page.click("form:has(input[value=escalate]) button")
        page.screenshot(path=out / "05-detail-escalated.png", full_page=True)
        page.goto(f"{base}/console/stats")
        page.screenshot(path=out / "06-stats.png", full_page=True)
        page.goto(f"{base}/console/audit?period=2026-Q4")
        page.screenshot(path=out / "07-audit.png", full_page=True)
        page.goto(f"{base}/console/users")
        page.screenshot(path=out / "08-users.png", full_page=True)
        viewer_page = browser.new_page(viewport={"width": 1360, "height": 900})
        sign_in(viewer_page, base, viewer)
        viewer_page.goto(f"{base}/console/users")
        viewer_page.screenshot(path=out / "09-viewer-forbidden.png")
        browser.close()


if __name__ == "__main__":
    main()
