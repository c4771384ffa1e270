"""The outbox: emails captured instead of sent (no SMTP server configured), shown inert."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

from flask import abort, g, render_template, request
from sqlalchemy import func, select

from mailer.delivery import get_captured, list_captured
from mailer.models import CapturedEmail, Link
from mailer.tracking.preview import inert_preview
from mailer.web.database import db_session, settings
from mailer.web.ui.auth import login_required
from mailer.web.ui.blueprint import bp

PAGE_SIZE = 50
SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


@bp.get("/outbox")
@login_required
def outbox() -> str:
    """The store's captured emails, newest first."""
    total = db_session().scalar(
        select(func.count(CapturedEmail.id)).where(CapturedEmail.store_id == g.store.id)
    ) or 0
    return render_template(
        "ui/outbox.html",
        emails=list_captured(db_session(), g.store.id, limit=PAGE_SIZE),
        total=total,
        capturing=settings().captures_email,
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
        "headers": [(k, str(v)) for k, v in parsed.items() if k in SHOWN_HEADERS],
        # Looking at an email here must never count as an open or a click.
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
    view = "text" if request.args.get("view") == "text" else "html"
    return render_template("ui/outbox_email.html", email=email, view=view, **_parts(email.raw))
