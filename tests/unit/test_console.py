"""The reviewer console through Flask's test client, on a real SQLite store: sign-in and roles,
cookies, CSRF, slowed failed logins, actions and bulk actions, escaping, CSV, stats, audit."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from crmbridge.console import LoginThrottle, console_app
from crmbridge.console.auth import FREE_FAILURES
from crmbridge.model import Cursor, Outcome, Reason
from crmbridge.ports import RejectFilter, StateStore
from crmbridge.settings import ConsoleSettings
from crmbridge.state import open_store
from crmbridge.users import hash_password
from tests.decisions import decision

PASSWORD = "correct horse battery"
HOSTILE = "<script>alert(1)</script>"
NEED = (Reason("need", "need: empty", code="RULE"),)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    """A store with three budget rejects (one with a hostile job title), one need reject, and a
    viewer, a reviewer and an admin."""
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}", create=True)
    opened.commit_page(
        "hubspot.contacts",
        [
            decision("1", Outcome.REJECTED, lead_source="ADS"),
            decision("2", Outcome.REJECTED, lead_source="ADS", inputs={"jobtitle": HOSTILE}),
            decision("3", Outcome.REJECTED, lead_source="SEO"),
            decision("4", Outcome.REJECTED, reasons=NEED, lead_source="SEO"),
        ],
        Cursor(1, 1),
    )
    for name, role in (("vic", "viewer"), ("rita", "reviewer"), ("ada", "admin")):
        opened.save_user(name, role, hash_password(PASSWORD), new=True)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(store: StateStore, clock: Clock) -> FlaskClient:
    app = console_app(store, ConsoleSettings(), throttle=LoginThrottle(clock))
    return app.test_client()


def token(client: FlaskClient, path: str = "/console/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> int:
    answer = client.post(
        "/console/login",
        data={"name": name, "password": password, "csrf_token": token(client)},
    )
    return answer.status_code


def reject_id(store: StateStore, contact: str) -> int:
    [record] = store.rejects(RejectFilter(contact_id=contact, include_resolved=True))
    return record.id


def test_every_page_but_the_login_needs_a_signed_in_user(client: FlaskClient) -> None:
    """Anonymous: the queue, a reject, stats and the export redirect to the login page."""
    for path in ("/console/", "/console/rejects/1", "/console/stats", "/console/export.csv"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/console/login")


def test_the_session_cookie_is_secure_httponly_and_samesite(client: FlaskClient) -> None:
    """Signing in sets one cookie: Secure, HttpOnly, SameSite=Lax."""
    answer = client.post(
        "/console/login",
        data={"name": "rita", "password": PASSWORD, "csrf_token": token(client)},
    )
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("crmbridge_console=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_a_wrong_password_is_refused_and_failures_slow_the_next_attempts(
    client: FlaskClient, clock: Clock
) -> None:
    """After the free failures even the right password waits; after the wait it works."""
    for _ in range(FREE_FAILURES):
        assert sign_in(client, "rita", "wrong password!") == 401
    assert sign_in(client, "rita") == 429
    clock.now += 3
    assert sign_in(client, "rita") == 302


def test_an_unknown_name_fails_like_a_wrong_password(client: FlaskClient) -> None:
    """No hint whether a name exists."""
    answer = client.post(
        "/console/login",
        data={"name": "nobody", "password": PASSWORD, "csrf_token": token(client)},
    )
    assert answer.status_code == 401
    assert "Wrong name or password." in answer.get_data(as_text=True)


def test_a_form_posted_without_its_token_is_refused(client: FlaskClient, store: StateStore) -> None:
    """A signed-in reviewer's approve without the CSRF token: 400, nothing changed."""
    sign_in(client, "rita")
    target = reject_id(store, "1")
    answer = client.post(f"/console/rejects/{target}", data={"action": "approve", "note": "x"})
    assert answer.status_code == 400
    assert store.audit_trail(target) == []


def test_a_viewer_cannot_approve(client: FlaskClient, store: StateStore) -> None:
    """A viewer's approve with a valid token: 403, nothing changed; the page shows no form."""
    sign_in(client, "vic")
    target = reject_id(store, "1")
    page = client.get(f"/console/rejects/{target}").get_data(as_text=True)
    assert "Approve as exception" not in page
    answer = client.post(
        f"/console/rejects/{target}",
        data={"action": "approve", "note": "x", "csrf_token": token(client, "/console/")},
    )
    assert answer.status_code == 403
    assert store.audit_trail(target) == []


def test_a_reviewer_approves_with_a_note_and_the_trail_names_them(
    client: FlaskClient, store: StateStore
) -> None:
    """Approve from the detail page: excepted, one audit entry by the signed-in user."""
    sign_in(client, "rita")
    target = reject_id(store, "1")
    answer = client.post(
        f"/console/rejects/{target}",
        data={
            "action": "approve",
            "note": "worth a call",
            "csrf_token": token(client, "/console/"),
        },
    )
    assert answer.status_code == 302
    [entry] = store.audit_trail(target)
    assert (entry.actor, entry.to_status, entry.note) == ("rita", "excepted", "worth a call")
    page = client.get(f"/console/rejects/{target}").get_data(as_text=True)
    assert "worth a call" in page


def test_an_action_without_a_note_is_refused(client: FlaskClient, store: StateStore) -> None:
    """Dismissing without saying why changes nothing."""
    sign_in(client, "rita")
    target = reject_id(store, "1")
    client.post(
        f"/console/rejects/{target}",
        data={"action": "dismiss", "note": " ", "csrf_token": token(client, "/console/")},
    )
    assert store.audit_trail(target) == []


def test_bulk_action_on_a_filter_changes_every_match(
    client: FlaskClient, store: StateStore
) -> None:
    """Dismiss every open budget reject from ADS: two changed, the others not; a stale count
    (the filter selects other rejects now) changes nothing."""
    sign_in(client, "rita")
    form = {
        "status": ["open", "escalated"],
        "criterion": "budget",
        "source": "ADS",
        "action": "dismiss",
        "note": "no budget",
        "csrf_token": token(client, "/console/"),
    }
    client.post("/console/bulk", data={**form, "count": "3"})
    assert store.count_rejects(RejectFilter(statuses=("dismissed",))) == 0
    answer = client.post("/console/bulk", data={**form, "count": "2"})
    assert answer.status_code == 302
    dismissed = store.rejects(RejectFilter(statuses=("dismissed",)))
    assert sorted(r.decision.contact_id for r in dismissed) == ["1", "2"]


def test_hubspot_values_are_escaped_on_every_page(client: FlaskClient, store: StateStore) -> None:
    """A <script> job title is text in the list search and the detail page, never markup."""
    sign_in(client, "vic")
    detail = client.get(f"/console/rejects/{reject_id(store, '2')}").get_data(as_text=True)
    assert HOSTILE not in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    listing = client.get("/console/", query_string={"q": HOSTILE}).get_data(as_text=True)
    assert HOSTILE not in listing
    assert "1</b> rejects" in listing


def test_the_list_filters_and_pages_on_the_server(client: FlaskClient) -> None:
    """Filters narrow the list; a filter by source shows only that source."""
    sign_in(client, "vic")
    page = client.get("/console/", query_string={"source": "SEO"}).get_data(as_text=True)
    assert "<b>2</b> rejects" in page
    page = client.get("/console/", query_string={"criterion": "need"}).get_data(as_text=True)
    assert "<b>1</b> rejects" in page


def test_the_csv_export_is_the_current_filter(client: FlaskClient) -> None:
    """Export with a filter: a header and exactly the matching rejects, values exact."""
    sign_in(client, "vic")
    answer = client.get("/console/export.csv", query_string={"source": "ADS"})
    assert answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert sorted(r["contact_id"] for r in rows) == ["1", "2"]
    assert {r["lead_source"] for r in rows} == {"ADS"}


def test_stats_and_the_audit_report_show_their_charts(client: FlaskClient) -> None:
    """Both pages answer with their SVG charts; a bad period is said, not a crash."""
    sign_in(client, "vic")
    stats = client.get("/console/stats").get_data(as_text=True)
    assert stats.count("<svg") == 3
    assert "ADS" in stats
    this_month = datetime.now(UTC).strftime("%Y-%m")
    audit = client.get("/console/audit", query_string={"period": this_month})
    assert audit.get_data(as_text=True).count("<svg") == 4
    bad = client.get("/console/audit", query_string={"period": "2026-13"})
    assert "there is no month 13" in bad.get_data(as_text=True)
    csv_answer = client.get("/console/audit", query_string={"period": this_month, "format": "csv"})
    assert csv_answer.get_data(as_text=True).startswith("section,group,measure,value")


def test_only_admins_manage_users(client: FlaskClient, store: StateStore) -> None:
    """A reviewer gets 403 on the users page; an admin adds and removes a user."""
    sign_in(client, "rita")
    assert client.get("/console/users").status_code == 403
    admin = console_app(store, ConsoleSettings()).test_client()
    sign_in(admin, "ada")
    form = {"what": "add", "name": "newbie", "role": "viewer", "password": "long enough pw"}
    admin.post("/console/users", data={**form, "csrf_token": token(admin, "/console/users")})
    user = store.user("newbie")
    assert user is not None
    assert user.role == "viewer"
    admin.post(
        "/console/users",
        data={"what": "remove", "name": "newbie", "csrf_token": token(admin, "/console/users")},
    )
    assert store.user("newbie") is None


def test_a_removed_user_is_signed_out_at_once(client: FlaskClient, store: StateStore) -> None:
    """The session names the user; each request reads them again."""
    sign_in(client, "rita")
    assert client.get("/console/").status_code == 200
    store.remove_user("rita")
    assert client.get("/console/").status_code == 302
