"""The console in a real headless browser: a reviewer signs in, filters, opens a reject,
approves it; a pass syncs it as an exception and the audit trail shows it. A viewer cannot
approve, a form without its token is refused, a <script> from HubSpot shows as text."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from crmbridge.console.serve import RunningConsole
from crmbridge.ports import RejectFilter
from tests.e2e.conftest import World

from .conftest import PASSWORD

HOSTILE = "<script>window.crmbridgePwned = 1; alert(1)</script>"


def sign_in(browser: Browser, console: RunningConsole, name: str) -> Page:
    page = browser.new_page()
    page.goto(console.url)
    expect(page).to_have_url(f"{console.server.url}/console/login?next=/console/?")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Rejected leads")
    return page


def test_a_reviewer_approves_a_reject_and_the_next_pass_syncs_it(
    world: World, console: RunningConsole, browser: Browser
) -> None:
    """Sign in, filter by criterion, open the reject, approve it with a note; a pass syncs it as
    an exception; the detail page shows it resolved and who approved it."""
    held = world.add(budget="30000", email="held@example.com")
    world.add(jobtitle="Intern", email="other@example.com")
    assert world.sync().rejected == 2
    page = sign_in(browser, console, "rita")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.fill("input[name=criterion]", "budget")
    page.click("button:has-text('Filter')")
    expect(page.locator("tbody tr")).to_have_count(1)
    page.click("tbody tr td a")
    expect(page.locator("h1")).to_contain_text(f"contact {held}")
    page.fill("form:has(input[value=approve]) textarea[name=note]", "Met them at the fair")
    page.click("button:has-text('Approve as exception')")
    expect(page.locator(".flash.ok")).to_have_text("approve: 1 changed.")
    expect(page.locator("h1 .badge")).to_have_text("excepted")

    summary = world.sync()
    assert (summary.created, summary.exceptions) == (1, 1)
    lead = world.lead(held)
    assert lead is not None
    assert "approved by rita" in str(lead["CRMBridge_Exception__c"])

    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("resolved")
    trail = page.locator(".card:has(h2:has-text('Audit trail'))")
    expect(trail).to_contain_text("rita open → excepted")
    expect(trail).to_contain_text("Met them at the fair")
    expect(trail).to_contain_text("crmbridge excepted → resolved")
    history = page.locator("h2:has-text('Decision history') + table")
    expect(history).to_contain_text("created")
    expect(history).to_contain_text("exception approved by rita")


def test_a_viewer_cannot_approve(world: World, console: RunningConsole, browser: Browser) -> None:
    """The viewer's detail page has no actions; a forged approve with the token gets 403."""
    contact = world.add(budget="30000")
    world.sync()
    [record] = world.app.pipeline.store.rejects(RejectFilter(contact_id=contact))
    page = sign_in(browser, console, "vic")
    page.goto(f"{console.server.url}/console/rejects/{record.id}")
    expect(page.locator("text=Your role (viewer) can read, not act.")).to_be_visible()
    expect(page.locator("button:has-text('Approve as exception')")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(
        f"{console.server.url}/console/rejects/{record.id}",
        form={"action": "approve", "note": "forged", "csrf_token": token or ""},
    )
    assert answer.status == 403
    assert world.app.pipeline.store.audit_trail(record.id) == []


def test_a_form_posted_without_its_token_is_refused(
    world: World, console: RunningConsole, browser: Browser
) -> None:
    """The approve form with its token removed: the server answers 400, nothing changes."""
    contact = world.add(budget="30000")
    world.sync()
    [record] = world.app.pipeline.store.rejects(RejectFilter(contact_id=contact))
    page = sign_in(browser, console, "rita")
    page.goto(f"{console.server.url}/console/rejects/{record.id}")
    page.evaluate(
        "document.querySelectorAll('form input[name=csrf_token]').forEach(e => e.remove())"
    )
    page.fill("form:has(input[value=approve]) textarea[name=note]", "no token")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Approve as exception')")
    assert posted.value.status == 400
    assert world.app.pipeline.store.audit_trail(record.id) == []


def test_a_script_in_a_hubspot_property_shows_as_text(
    world: World, console: RunningConsole, browser: Browser
) -> None:
    """A job title holding a <script>: shown as text in the list and the detail, never run."""
    contact = world.add(jobtitle=HOSTILE)
    world.sync()
    page = sign_in(browser, console, "vic")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.fill("input[name=q]", "crmbridgePwned")
    page.click("button:has-text('Filter')")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text(HOSTILE)
    page.click("tbody tr td a")
    expect(page.locator("h1")).to_contain_text(f"contact {contact}")
    expect(page.locator("td", has_text=HOSTILE).first).to_be_visible()
    assert page.evaluate("window.crmbridgePwned === undefined")
    assert dialogs == []
