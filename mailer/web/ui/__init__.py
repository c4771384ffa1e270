"""The dashboard (server-rendered Flask + Jinja): report, campaigns, templates, contacts, settings, outbox."""

from __future__ import annotations

from flask import Flask

from mailer.web.ui import auth
from mailer.web.ui.blueprint import bp
from mailer.web.ui.formatting import register_filters


def register_dashboard(app: Flask) -> None:
    """Mount login and the dashboard pages; load the user before each request."""
    # Each page module adds its routes to the shared blueprint when imported.
    from mailer.web.ui import (  # noqa: F401
        campaigns,
        contacts,
        email_templates,
        outbox,
        report,
        store_settings,
        tasks,
    )

    app.before_request(auth.load_user)
    app.jinja_env.globals["csrf_token"] = auth.csrf_token
    app.jinja_env.globals["is_owner"] = auth.is_owner
    register_filters(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(bp)
