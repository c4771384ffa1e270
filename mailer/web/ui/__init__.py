"""The dashboard (server-rendered Flask + Jinja)."""

from __future__ import annotations

from flask import Flask

from mailer.web.ui import auth, views


def register_dashboard(app: Flask) -> None:
    """Mount login and the dashboard pages; load the user before each request."""
    app.before_request(auth.load_user)
    app.jinja_env.globals["csrf_token"] = auth.csrf_token
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
