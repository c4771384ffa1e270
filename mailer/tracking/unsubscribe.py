"""Unsubscribing a contact: effective at once, for every planned message of every campaign."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailer.models import Contact, Enrollment, Message, TrackingEvent
from mailer.tracking.suppressions import suppress


def unsubscribe(session: Session, contact: Contact, now: datetime, *, message: Message | None = None, source: str = "link") -> bool:
    """Unsubscribe `contact`; returns False when they already were (replays change nothing)."""
    already = contact.unsubscribed_at is not None
    if not already:
        contact.unsubscribed_at = now
        contact.updated_at = now
    suppress(session, contact.store_id, contact.email, "unsubscribed", now, source=source)
    session.execute(
        update(Message)
        .where(Message.contact_id == contact.id, Message.status == "planned")
        .values(status="skipped", skip_reason="unsubscribed")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Enrollment)
        .where(Enrollment.contact_id == contact.id, Enrollment.status == "active")
        .values(status="exited", exit_reason="unsubscribed", exited_at=now)
        .execution_options(synchronize_session=False)
    )
    if message is not None and not already:
        session.add(
            TrackingEvent(
                store_id=contact.store_id, message_id=message.id, contact_id=contact.id,
                kind="unsubscribe", occurred_at=now,
            )
        )
    session.flush()
    return not already
