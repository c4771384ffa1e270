"""Record what the transport said about each message: sent, retry later, or failed for good."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from mailer.db import is_postgresql, recordset, recordset_rows
from mailer.errors import DeliveryError, PermanentDeliveryError
from mailer.models import Contact, Message, TrackingEvent
from mailer.scheduling.claim import Claim
from mailer.scheduling.planner import retry_at
from mailer.tracking.suppressions import suppress


@dataclass(frozen=True)
class Outcome:
    """The transport's answer for one message: `error` is None when the server accepted it.

    `record` is what the row keeps of the email it was sent (`ComposedEmail.record`: subject,
    to_email, message_id_header, template_version), written with the status it moves to.
    """

    message_id: int
    error: DeliveryError | None = None
    record: Mapping[str, object] = field(default_factory=dict)


# The email's own fields, which the row records with its outcome (see Outcome.record).
_RECORDED = ("subject", "to_email", "message_id_header", "template_version")
_MESSAGES = Message.__table__


def _sent_values(sent_at: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """What marking a row sent writes, with its email's fields (bound parameters or columns)."""
    return {"status": "sent", "sent_at": sent_at, "attempts": _MESSAGES.c.attempts + 1, "claim_token": None,
            "lease_until": None, **fields}


# Only rows still `sending` under the checkpoint's claim (`m_token`) are marked: a row whose lease
# another dispatcher took is left alone. SQLite: an executemany of one row each (sqlite3 loops in C).
_HELD = (_MESSAGES.c.claim_token == bindparam("m_token"), _MESSAGES.c.status == "sending")
_SENT_ONE = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("m_id"), *_HELD)
    .values(_sent_values(bindparam("m_now"), {name: bindparam(f"m_{name}") for name in _RECORDED}))
)
# PostgreSQL: one UPDATE … FROM the checkpoint's JSON rows.
_SENT_ROWS = recordset(_MESSAGES, ("id", *_RECORDED))
_SENT_MANY = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == _SENT_ROWS.c.id, *_HELD)
    .values(_sent_values(bindparam("m_now"), {name: _SENT_ROWS.c[name] for name in _RECORDED}))
)


def _guarded(claim: Claim, message_id: int):  # type: ignore[no-untyped-def]
    # Only the holder of the claim may move the row on: a stale worker changes nothing.
    return update(Message).where(
        Message.id == message_id, Message.claim_token == claim.token, Message.status == "sending"
    )


def record_outcomes(session: Session, claim: Claim, outcomes: list[Outcome], now: datetime) -> dict[str, int]:
    """Move each row to sent / planned (retry) / failed; suppress hard bounces. Flushes."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    accepted = [outcome for outcome in outcomes if outcome.error is None]
    if accepted:
        counts["sent"] = _mark_sent(session, claim, accepted, now)
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
                status="failed", sent_at=now, attempts=attempts, last_error=error_text, claim_token=None, lease_until=None,
                **{name: value for name, value in outcome.record.items() if name in _RECORDED},
            )
        )
        counts["failed"] += 1
        if isinstance(outcome.error, PermanentDeliveryError) and outcome.error.hard_bounce:
            _record_hard_bounce(session, message, now, error_text)
    session.flush()
    return counts


def _mark_sent(session: Session, claim: Claim, accepted: list[Outcome], now: datetime) -> int:
    """Mark the accepted rows sent, each with its email's fields, in one statement; returns how
    many this claim still held (a row whose lease another dispatcher took is left alone).

    Core, not an ORM UPDATE: nothing in the session is to be synchronised, and it runs every 25 sends.
    """
    rows = [{"id": o.message_id, **{name: o.record.get(name) for name in _RECORDED}} for o in accepted]
    if is_postgresql(session):
        result = session.execute(_SENT_MANY, {"rows": recordset_rows(rows), "m_token": claim.token, "m_now": now})
        return int(result.rowcount)  # type: ignore[attr-defined]
    # SQLite's executemany rowcount adds up the rows of each execution.
    params = [{"m_token": claim.token, "m_now": now, **{f"m_{key}": value for key, value in row.items()}} for row in rows]
    return int(session.execute(_SENT_ONE, params).rowcount)  # type: ignore[attr-defined]


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
