"""mailer: self-hosted trigger email that wins back an online store's lost customers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from mailer.config import Settings
    from mailer.db import Database


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    """Build the web application: settings, database, error mapping, then each part of the site."""
    from flask import Flask

    from mailer.web.api import register_api
    from mailer.web.database import register_database
    from mailer.web.errors import register_errors
    from mailer.web.health import register_health
    from mailer.web.setup import register_settings
    from mailer.web.snippet import register_snippet
    from mailer.web.track import register_tracking
    from mailer.web.ui import register_dashboard

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    register_settings(app, settings)
    register_database(app, database)
    register_errors(app)
    register_health(app)
    register_tracking(app)
    register_snippet(app)
    register_api(app)
    register_dashboard(app)
    return app
