"""Public tracking endpoints: unsubscribe and the reason links; the open pixel and click redirect (tracking_lane)."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, render_template, request

from mailer.campaigns.reasons import REASON_KEYS, REASONS, record_reason
from mailer.clock import utcnow
from mailer.models import Contact, Message, Store
from mailer.tracking.machine import classify_click
from mailer.tracking.tokens import read_token
from mailer.tracking.unsubscribe import unsubscribe
from mailer.web.database import db_session, settings
from mailer.web.tracking_lane import TrackingLane

bp = Blueprint("track", __name__)


def _unsubscribe_target(token: str) -> tuple[Message, Contact, Store]:
    found = read_token(settings().secret_key, "unsubscribe", token)
    session = db_session()
    message = session.get(Message, found[0]) if found else None
    if message is None:
        abort(404)
    contact = session.get(Contact, message.contact_id)
    store = session.get(Store, message.store_id)
    if contact is None or store is None:
        abort(404)
    return message, contact, store


@bp.route("/u/test-send", methods=["GET", "POST"])
def unsubscribe_test_send() -> str:
    """Test sends have a working-looking link that changes nothing."""
    return render_template("unsubscribe_test.html")


@bp.get("/u/<token>")
def unsubscribe_page(token: str) -> str:
    """A page with one button: a GET never unsubscribes (link scanners follow GETs)."""
    _message, contact, store = _unsubscribe_target(token)
    return render_template("unsubscribe.html", store=store, email=contact.email, done=False, token=token)


@bp.post("/u/<token>")
def unsubscribe_now(token: str) -> tuple[str, int]:
    """RFC 8058 one-click unsubscribe: the token is the authority, no cookie or CSRF needed."""
    message, contact, store = _unsubscribe_target(token)
    unsubscribe(db_session(), contact, utcnow(), message=message, source="one-click" if request.form.get("List-Unsubscribe") else "page")
    return render_template("unsubscribe.html", store=store, email=contact.email, done=True, token=token), 200


def _reason_target(token: str) -> tuple[Message, Store, str]:
    found = read_token(settings().secret_key, "reason", token)
    if found is None or found[1] >= len(REASON_KEYS):
        abort(404)
    message = db_session().get(Message, found[0])
    store = db_session().get(Store, message.store_id) if message is not None else None
    if message is None or store is None:
        abort(404)
    return message, store, REASON_KEYS[found[1]]


@bp.get("/r/<token>")
def reason_click(token: str) -> str:
    """One click on "why did you leave?": record the answer (people only) and thank them."""
    message, store, reason = _reason_target(token)
    now = utcnow()
    since_sent = (now - message.sent_at).total_seconds() if message.sent_at else None
    verdict = classify_click(request.user_agent.string, since_sent, honeypot=False, method=request.method)
    if not verdict.machine and message.status == "sent":
        record_reason(db_session(), message, reason, now)
    return render_template("reason.html", store=store, reason=reason, label=REASONS[reason], token=token, noted=False)


@bp.post("/r/<token>")
def reason_note(token: str) -> str:
    """The free-text answer of "other" (or any reason): kept beside the click."""
    message, store, reason = _reason_target(token)
    note = (request.form.get("note") or "").strip()[:2000]
    if message.status == "sent":
        record_reason(db_session(), message, reason, utcnow(), note=note or None)
    return render_template("reason.html", store=store, reason=reason, label=REASONS[reason], token=token, noted=True)


def register_tracking(app: Flask) -> None:
    """Mount the public tracking endpoints (no login, no CSRF); the pixel and clicks go in front of Flask."""
    app.register_blueprint(bp)
    app.wsgi_app = TrackingLane(app.wsgi_app, app.extensions["mailer_db"], app.extensions["mailer_settings"].secret_key)  # type: ignore[method-assign]
