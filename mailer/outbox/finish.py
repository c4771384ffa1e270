"""Record what the transport said about each message: sent, retry later, or failed for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailer.db import among
from mailer.errors import DeliveryError, PermanentDeliveryError
from mailer.models import Contact, Message, TrackingEvent
from mailer.scheduling.claim import Claim
from mailer.scheduling.planner import retry_at
from mailer.tracking.suppressions import suppress


@dataclass(frozen=True)
class Outcome:
    """The transport's answer for one message: `error` is None when the server accepted it."""

    message_id: int
    error: DeliveryError | None = None


def _guarded(claim: Claim, message_id: int):  # type: ignore[no-untyped-def]
    # Only the holder of the claim may move the row on: a stale worker changes nothing.
    return update(Message).where(
        Message.id == message_id, Message.claim_token == claim.token, Message.status == "sending"
    )


def record_outcomes(session: Session, claim: Claim, outcomes: list[Outcome], now: datetime) -> dict[str, int]:
    """Move each row to sent / planned (retry) / failed; suppress hard bounces. Flushes."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    accepted = [outcome.message_id for outcome in outcomes if outcome.error is None]
    if accepted:
        # One statement for the whole checkpoint; RETURNING counts only rows this claim still held.
        # Core, not an ORM UPDATE: nothing in the session is to be synchronised, and it runs every 25 sends.
        rows = Message.__table__.c
        result = session.execute(
            update(Message.__table__)
            .where(among(session, rows.id, accepted), rows.claim_token == claim.token, rows.status == "sending")
            .values(status="sent", sent_at=now, attempts=rows.attempts + 1, claim_token=None, lease_until=None)
            .returning(rows.id)
        )
        counts["sent"] = len(result.all())
    for outcome in outcomes:
        if outcome.error is None:
            continue
        message = session.get(Message, outcome.message_id)
        if message is None or message.claim_token != claim.token:
            continue
        attempts = message.attempts + 1
        error_text = f"{outcome.error.code or ''} {outcome.error}".strip()[:2000]
        next_try = None if isinstance(outcome.error, PermanentDeliveryError) else retry_at(now, attempts)
        if next_try is not None:
            session.execute(
                _guarded(claim, message.id).values(
                    status="planned", due_at=next_try, attempts=attempts, last_error=error_text,
                    claim_token=None, lease_until=None,
                )
            )
            counts["retry"] += 1
            continue
        session.execute(
            # sent_at records the attempt: a refused message still counts as sent (and bounced) in reports
            _guarded(claim, message.id).values(
                status="failed", sent_at=now, attempts=attempts, last_error=error_text, claim_token=None, lease_until=None
            )
        )
        counts["failed"] += 1
        if isinstance(outcome.error, PermanentDeliveryError) and outcome.error.hard_bounce:
            _record_hard_bounce(session, message, now, error_text)
    session.flush()
    return counts


def _record_hard_bounce(session: Session, message: Message, now: datetime, error_text: str) -> None:
    """The address itself was refused: suppress it so nothing else is ever sent there."""
    email = session.scalar(select(Contact.email).where(Contact.id == message.contact_id))
    if email:
        suppress(session, message.store_id, email, "bounced", now, source=error_text[:64])
    session.add(
        TrackingEvent(
            store_id=message.store_id, message_id=message.id, contact_id=message.contact_id,
            kind="bounce", occurred_at=now,
        )
    )
