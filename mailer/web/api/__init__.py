"""The JSON API: public tracking, server events, contacts, coupons, reports, webhooks."""

from __future__ import annotations

from flask import Flask

from mailer.web.api import contacts, coupons, events, report, webhooks
from mailer.web.api.ratelimit import register_rate_limits
from mailer.web.api.track_lane import register_track_lane


def register_api(app: Flask) -> None:
    """Mount the JSON API blueprints (and, in the queued ingest mode, the snippet's lane in front of them)."""
    register_rate_limits(app)
    app.register_blueprint(events.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(coupons.bp)
    app.register_blueprint(report.bp)
    app.register_blueprint(webhooks.bp)
    register_track_lane(app)
