"""Recording an open or a click of a sent message, flagged human or machine by the pure rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailer.models import Link, Message, TrackingEvent
from mailer.tracking.machine import Verdict, classify_click, classify_open


def record_touch(
    session: Session,
    message: Message,
    kind: str,
    *,
    now: datetime,
    user_agent: str,
    ip: str | None,
    link: Link | None = None,
    method: str = "GET",
) -> Verdict:
    """Store one open or click of `message` and return whether a machine made it."""
    since_sent = (now - message.sent_at).total_seconds() if message.sent_at else None
    if kind == "open":
        verdict = classify_open(user_agent, ip, since_sent)
    else:
        verdict = classify_click(user_agent, since_sent, honeypot=link is not None and link.kind == "honeypot", method=method)
    session.add(
        TrackingEvent(
            store_id=message.store_id, message_id=message.id, contact_id=message.contact_id, kind=kind,
            link_id=link.id if link else None, machine=verdict.machine, machine_reason=verdict.reason,
            user_agent=user_agent[:500], ip=(ip or "")[:64], occurred_at=now,
        )
    )
    return verdict
