"""Dashboard pages: the overview of what was sent and the outbox of captured emails."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

from flask import Blueprint, abort, g, render_template
from sqlalchemy import func, select

from mailer.delivery import get_captured, list_captured
from mailer.models import Campaign, Link, Message
from mailer.tracking.preview import inert_preview
from mailer.web.database import db_session, settings
from mailer.web.ui.auth import login_required

bp = Blueprint("ui", __name__)


@bp.get("/")
@login_required
def overview() -> str:
    """Messages by campaign and status for the user's store."""
    rows = db_session().execute(
        select(Campaign.name, Message.status, func.count())
        .join(Message, Message.campaign_id == Campaign.id)
        .where(Campaign.store_id == g.store.id)
        .group_by(Campaign.name, Message.status)
    )
    by_campaign: dict[str, dict[str, int]] = {}
    for name, status, n in rows:
        by_campaign.setdefault(name, {})[status] = n
    campaigns = db_session().scalars(select(Campaign).where(Campaign.store_id == g.store.id).order_by(Campaign.priority.desc()))
    return render_template("ui/overview.html", by_campaign=by_campaign, campaigns=list(campaigns))


@bp.get("/outbox")
@login_required
def outbox() -> str:
    """The emails captured instead of sent (no SMTP server configured)."""
    return render_template(
        "ui/outbox.html", emails=list_captured(db_session(), g.store.id, limit=100), capturing=settings().captures_email
    )


def _stored_link(message_id: int, position: int) -> str | None:
    return db_session().scalar(
        select(Link.url).where(Link.message_id == message_id, Link.position == position, Link.store_id == g.store.id)
    )


def _parts(raw: bytes) -> dict[str, Any]:
    parsed = message_from_bytes(raw, policy=policy.default)
    html = parsed.get_body(preferencelist=("html",))
    text = parsed.get_body(preferencelist=("plain",))
    return {
        "headers": [(k, str(v)) for k, v in parsed.items()],
        "html": inert_preview(html.get_content(), settings().secret_key, _stored_link) if html is not None else "",
        "text": text.get_content() if text is not None else "",
    }


@bp.get("/outbox/<int:captured_id>")
@login_required
def outbox_email(captured_id: int) -> str:
    """One captured email: headers, the HTML in a sandboxed frame, and the text part."""
    email = get_captured(db_session(), g.store.id, captured_id)
    if email is None:
        abort(404)
    return render_template("ui/outbox_email.html", email=email, **_parts(email.raw))
