"""The reviewer console: a Flask blueprint the shared app factory (``crmbridge.web.app``) mounts.

Pages: the queue (filtered and paged by the store: indexed queries, one page read at a time),
a reject's detail (its values against each criterion, the contact's decision history, the
audit trail), approve / dismiss / escalate / reopen with a note, the same on every reject a
filter selects, statistics and the audit report with charts, CSV of the current filter, and
users (admins).

Security: every page but the login needs a signed-in user; viewers read, reviewers act,
admins manage users (:mod:`crmbridge.users`). Every form carries a CSRF token (Flask-WTF's
``CSRFProtect``, for the whole app: a POST without a valid token is refused with 400). Jinja
autoescapes every value; nothing from HubSpot is ever marked safe. The only markup inserted
as is are the charts (drawn by matplotlib, text as paths) and the audit report's body, whose
every value is escaped as it is built (:mod:`crmbridge.audit_report`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as WerkzeugResponse

from crmbridge.ports import RejectFilter, StateStore, User
from crmbridge.reports import CSV_COLUMNS, age, csv_row, ms_iso, review_status
from crmbridge.review import Action, ReviewChange, Status
from crmbridge.review_stats import day_after, month, quarter
from crmbridge.users import Role, check_password, hash_password, may, password_problem

from .auth import LoginThrottle

__all__ = ["PAGE_SIZE", "console_blueprint"]

PAGE_SIZE = 50
#: Rows a CSV export reads per query.
EXPORT_CHUNK = 1000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FILTER_KEYS = ("criterion", "code", "stage", "source", "tier", "assignee", "since", "until", "q")
F = TypeVar("F", bound=Callable[..., Any])


def console_blueprint(
    store: StateStore, *, throttle: LoginThrottle | None = None, session_hours: float = 8.0
) -> Blueprint:
    """The console on ``store``, under ``/console``. Registering it turns CSRF protection on
    for the whole app and sets the session's lifetime."""
    bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
    guard = throttle or LoginThrottle()
    csrf = CSRFProtect()

    def _setup(state: BlueprintSetupState) -> None:
        app = state.app
        app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's own lifetime rules
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=session_hours)
        csrf.init_app(app)

    bp.record_once(_setup)
    _routes(bp, store, guard)
    return bp


def _user(store: StateStore) -> User | None:
    if "user" not in g:
        name = session.get("user")
        g.user = store.user(name) if isinstance(name, str) else None
    return cast("User | None", g.user)


def _routes(bp: Blueprint, store: StateStore, guard: LoginThrottle) -> None:  # noqa: PLR0915 - one closure per page
    def requires(role: Role) -> Callable[[F], F]:
        def decorate(view: F) -> F:
            @wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                user = _user(store)
                if user is None:
                    return redirect(url_for("console.login", next=request.full_path))
                if not may(user.role, role):
                    return render_template(
                        "console/forbidden.html", user=user, needed=role.value
                    ), 403
                return view(*args, **kwargs)

            return cast("F", wrapped)

        return decorate

    @bp.context_processor
    def _globals() -> dict[str, Any]:
        user = _user(store)
        return {
            "user": user,
            "can_act": user is not None and may(user.role, Role.REVIEWER),
            "is_admin": user is not None and may(user.role, Role.ADMIN),
            "age": age,
            "status_of": review_status,
            "ms_iso": ms_iso,
        }

    # -- signing in ------------------------------------------------------------------------
    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            return render_template("console/login.html", error=None)
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        keys = (f"name:{name}", f"addr:{request.remote_addr}")
        wait = guard.wait_s(*keys)
        if wait > 0:
            error = f"Too many failed attempts. Try again in {int(wait) + 1} s."
            return render_template("console/login.html", error=error), 429
        user = check_password(store, name, password) if name and password else None
        if user is None:
            guard.failed(*keys)
            return render_template("console/login.html", error="Wrong name or password."), 401
        guard.succeeded(keys[0])
        session.clear()
        session.permanent = True
        session["user"] = user.name
        target = request.args.get("next", "")
        if not target.startswith("/console/") or target.startswith("//"):
            target = url_for("console.rejects_list")
        return redirect(target)

    @bp.post("/logout")
    def logout() -> WerkzeugResponse:
        session.clear()
        return redirect(url_for("console.login"))

    # -- the queue -------------------------------------------------------------------------
    @bp.get("/")
    @requires(Role.VIEWER)
    def rejects_list() -> str:
        query, shown = _filter(request.args)
        page = max(_int(request.args.get("page"), 1), 1)
        query = _page(query, page)
        records = store.rejects(query)
        total = store.count_rejects(query)
        return render_template(
            "console/list.html",
            records=records,
            total=total,
            page=page,
            pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            first=query.offset + 1,
            shown=shown,
            statuses=[s.value for s in Status],
            args=request.args,
            page_url=lambda n: _url_with(request.args, page=n),
            export_url=_url_with(request.args, endpoint="console.export", page=None),
        )

    @bp.get("/export.csv")
    @requires(Role.VIEWER)
    def export() -> Response:
        query, _ = _filter(request.args)

        def rows() -> Iterator[str]:
            yield _csv_line(CSV_COLUMNS)
            offset = 0
            while True:
                chunk = store.rejects(_with(query, limit=EXPORT_CHUNK, offset=offset))
                if not chunk:
                    return
                offset += len(chunk)
                for record in chunk:
                    yield _csv_line(csv_row(record))

        return Response(
            stream_with_context(rows()),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="crmbridge-rejects.csv"'},
        )

    @bp.post("/bulk")
    @requires(Role.REVIEWER)
    def bulk() -> WerkzeugResponse:
        query, _ = _filter(request.form)
        ids = store.reject_ids(query)
        expected = _int(request.form.get("count"), -1)
        if expected != len(ids):
            flash(
                f"The filter now selects {len(ids)} rejects, not {expected}: nothing changed. "
                "Check the list and apply again.",
                "error",
            )
        else:
            _change(store, ids, request.form)
        args = MultiDict(request.form)
        for key in ("csrf_token", "action", "note", "assignee", "count"):
            args.pop(key, None)
        return redirect(_url_with(args))

    # -- one reject ------------------------------------------------------------------------
    @bp.get("/rejects/<int:reject_id>")
    @requires(Role.VIEWER)
    def detail(reject_id: int) -> str:
        record = store.reject(reject_id)
        if record is None:
            abort(404)
        history = store.decisions_of(record.decision.contact_id)
        return render_template(
            "console/detail.html",
            record=record,
            d=record.decision,
            trail=store.audit_trail(reject_id),
            history=list(reversed(history)),
        )

    @bp.post("/rejects/<int:reject_id>")
    @requires(Role.REVIEWER)
    def act(reject_id: int) -> WerkzeugResponse:
        _change(store, [reject_id], request.form)
        return redirect(url_for("console.detail", reject_id=reject_id))

    # -- statistics and the audit report ----------------------------------------------------
    @bp.get("/stats")
    @requires(Role.VIEWER)
    def stats() -> str:
        from crmbridge.audit_report import bar_chart_svg  # noqa: PLC0415 - matplotlib
        from crmbridge.review_stats import reject_stats  # noqa: PLC0415

        since = _day(request.args.get("since"))
        until = _day(request.args.get("until"))
        result = reject_stats(
            store, since=since or "0000", until=day_after(until) if until else "9999"
        )
        criteria = {c: {"held back": n} for c, n in result.by_criterion.most_common()}
        sources = {r.source: {"passed": r.qualified, "held back": r.contacts - r.qualified}
                   for r in result.by_source}  # fmt: skip
        weeks = {w: {"passed": c["passed"], "held back": c["rejected"]}
                 for w, c in result.by_week.items()}  # fmt: skip
        charts = [
            bar_chart_svg("Rejects by criterion", criteria, ("held back",)),
            bar_chart_svg("Leads by source: qualified or not", sources, ("passed", "held back")),
            bar_chart_svg("Decisions by week", weeks, ("passed", "held back")),
        ]
        return render_template(
            "console/stats.html",
            stats=result,
            since=since or "",
            until=until or "",
            charts=[Markup(svg) for svg in charts],  # noqa: S704 - drawn here, text as paths
        )

    @bp.get("/audit")
    @requires(Role.VIEWER)
    def audit() -> Any:
        from crmbridge.audit_report import audit_body, audit_csv, audit_html  # noqa: PLC0415
        from crmbridge.review_stats import audit_figures  # noqa: PLC0415

        asked = (request.args.get("period") or "").strip()
        if not asked:
            return render_template("console/audit.html", period="", body=None, error=None)
        try:
            period = quarter(asked) if "Q" in asked.upper() else month(asked)
        except ValueError as exc:
            return render_template("console/audit.html", period=asked, body=None, error=str(exc))
        figures = audit_figures(store, period)
        fmt = request.args.get("format")
        if fmt in ("csv", "html"):
            text = audit_csv(figures) if fmt == "csv" else audit_html(figures)
            name = f"crmbridge-audit-{period.name}.{fmt}"
            return Response(
                text,
                mimetype="text/csv" if fmt == "csv" else "text/html",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        body = Markup(audit_body(figures))  # noqa: S704 - every value escaped as it is built
        return render_template("console/audit.html", period=period.name, body=body, error=None)

    # -- users -----------------------------------------------------------------------------
    @bp.get("/users")
    @requires(Role.ADMIN)
    def users() -> str:
        return render_template(
            "console/users.html", accounts=store.users(), roles=[r.value for r in Role]
        )

    @bp.post("/users")
    @requires(Role.ADMIN)
    def users_change() -> WerkzeugResponse:
        name = request.form.get("name", "").strip()
        role = request.form.get("role", "")
        what = request.form.get("what", "")
        password = request.form.get("password", "")
        if not name or (role not in {r.value for r in Role} and what != "remove"):
            flash("Give a name and a role.", "error")
        elif what == "remove":
            me = _user(store)
            if me is not None and me.name == name:
                flash("You cannot remove yourself.", "error")
            elif store.remove_user(name):
                flash(f"Removed {name}.", "ok")
        elif what in ("add", "passwd"):
            problem = password_problem(password)
            existing = store.user(name)
            if problem:
                flash(problem, "error")
            elif what == "add" and existing is not None:
                flash(f"{name} exists: set a new password instead.", "error")
            else:
                store.save_user(name, role, hash_password(password), new=existing is None)
                flash(f"Saved {name} ({role}).", "ok")
        elif what == "role" and (existing := store.user(name)) is not None:
            store.save_user(name, role, existing.password_hash, new=False)
            flash(f"{name} is now {role}.", "ok")
        return redirect(url_for("console.users"))


def _change(store: StateStore, ids: list[int], form: MultiDict[str, str]) -> None:
    """Apply the action a form asks for to ``ids``; flash what happened."""
    user = _user(store)
    assert user is not None
    try:
        action = Action(form.get("action", ""))
    except ValueError:
        flash("Choose an action.", "error")
        return
    if action not in (Action.APPROVE, Action.DISMISS, Action.ESCALATE, Action.REOPEN):
        flash("Choose an action.", "error")
        return
    note = (form.get("note") or "").strip() or None
    if note is None and action is not Action.REOPEN:
        flash(f"Say why you {action} (the note is kept in the audit trail).", "error")
        return
    change = ReviewChange(action, user.name, note=note, assignee=form.get("assignee") or None)
    results = store.change_review(ids, change)
    done = [r for r in results if r.done]
    refused = [r for r in results if not r.done]
    if done:
        flash(f"{action}: {len(done)} changed.", "ok")
    for result in refused[:10]:
        flash(f"Reject {result.reject_id}: {result.message}.", "error")
    if len(refused) > 10:
        flash(f"… and {len(refused) - 10} more refused.", "error")


def _filter(args: MultiDict[str, str]) -> tuple[RejectFilter, dict[str, Any]]:
    """The store's filter for a page's query string (or a bulk form), and what the filter
    form shows. Unknown statuses and malformed days are ignored."""
    statuses = [s for s in args.getlist("status") if s in {x.value for x in Status}]
    if not statuses and "status" not in args:
        statuses = [s.value for s in (Status.OPEN, Status.ESCALATED)]
    shown: dict[str, Any] = {key: (args.get(key) or "").strip() for key in _FILTER_KEYS}
    shown["status"] = statuses
    query = RejectFilter(
        statuses=tuple(statuses) if statuses else tuple(s.value for s in Status),
        criterion=shown["criterion"] or None,
        code=shown["code"] or None,
        stage=shown["stage"] or None,
        lead_source=shown["source"] or None,
        tier=shown["tier"] or None,
        assignee=shown["assignee"] or None,
        since=_day(shown["since"]),
        until=_day(shown["until"]),
        text=shown["q"] or None,
        limit=PAGE_SIZE,
    )
    return query, shown


def _page(query: RejectFilter, page: int) -> RejectFilter:
    return _with(query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)


def _with(query: RejectFilter, **changes: Any) -> RejectFilter:
    return replace(query, **changes)


def _day(value: str | None) -> str | None:
    return value if value and _DAY.fullmatch(value) else None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def _url_with(
    args: MultiDict[str, str], *, endpoint: str = "console.rejects_list", **changes: Any
) -> str:
    values: dict[str, Any] = {key: args.getlist(key) for key in args}
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return url_for(endpoint, **values)


def _csv_line(cells: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()
