"""The reviewer console: a Flask blueprint (:func:`console_blueprint`) for the shared web stack
(:mod:`crmbridge.web`), and the app that `crmbridge console` and `crmbridge run` serve."""

from __future__ import annotations

from flask import Flask, redirect
from werkzeug.wrappers import Response as WerkzeugResponse

from crmbridge.console.auth import LoginThrottle
from crmbridge.console.views import console_blueprint
from crmbridge.ports import StateStore
from crmbridge.settings import ConsoleSettings
from crmbridge.web.app import create_app

__all__ = ["LoginThrottle", "console_app", "console_blueprint"]


def console_app(
    store: StateStore, settings: ConsoleSettings, *, throttle: LoginThrottle | None = None
) -> Flask:
    """The shared app with the console mounted, its cookies set as ``settings`` say."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    app = create_app(
        blueprints=[
            console_blueprint(store, throttle=throttle, session_hours=settings.session_hours)
        ],
        secret_key=secret,
        config={
            "SESSION_COOKIE_SECURE": settings.secure_cookies,
            "SESSION_COOKIE_NAME": "crmbridge_console",
        },
    )

    @app.get("/")
    def _home() -> WerkzeugResponse:
        return redirect("/console/")

    return app
