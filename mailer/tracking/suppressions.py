"""The suppression list: who must never be mailed again, checked at send time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.db import among, insert_ignoring_conflicts
from mailer.models import Suppression
from mailer.models.suppression import email_hash


def suppress(session: Session, store_id: int, email: str, reason: str, now: datetime, source: str | None = None) -> None:
    """Add the (normalized) address to the store's suppression list; the first reason stays."""
    insert_ignoring_conflicts(
        session, Suppression,
        [{"store_id": store_id, "email_hash": email_hash(email), "reason": reason, "source": source, "created_at": now}],
    )


def suppressed_emails(session: Session, store_id: int, emails: Iterable[str]) -> set[str]:
    """Those of `emails` (normalized) that are on the store's suppression list."""
    by_hash = {email_hash(e): e for e in emails}
    if not by_hash:
        return set()
    rows = session.scalars(
        select(Suppression.email_hash).where(
            Suppression.store_id == store_id, among(session, Suppression.email_hash, by_hash)
        )
    )
    return {by_hash[h] for h in rows}


def is_suppressed(session: Session, store_id: int, email: str) -> bool:
    """True when the address may not be mailed."""
    return bool(suppressed_emails(session, store_id, [email]))
