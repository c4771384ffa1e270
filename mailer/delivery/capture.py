"""The capture transport: emails are stored for the dashboard's outbox instead of being sent."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailer.clock import utcnow
from mailer.db import Database
from mailer.delivery.transport import Envelope, run_meanwhile
from mailer.errors import TransientDeliveryError
from mailer.models.captured_email import CapturedEmail

_SUBJECT_LENGTH = CapturedEmail.__table__.c.subject.type.length  # type: ignore[attr-defined]


class CaptureTransport:
    """Keeps each message as a CapturedEmail row, committed on its own like a real server would."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def send(
        self, envelope: Envelope, data: bytes, *, then: Envelope | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Store the exact bytes in a transaction of their own (the caller's rollback keeps them).

        `then` is unused; `meanwhile` is called after the commit (there is no wait to overlap).

        On SQLite, call it while holding no write transaction on the same database (the sender
        never holds one across delivery): SQLite has one writer, so the capture would wait for it.
        """
        try:
            with self.database.transaction() as session:
                session.add(
                    CapturedEmail(
                        store_id=envelope.store_id,
                        message_id=envelope.message_id,
                        sender=envelope.sender,
                        recipient=envelope.recipient,
                        subject=envelope.subject[:_SUBJECT_LENGTH],
                        raw=bytes(data),
                        created_at=utcnow(),
                    )
                )
        except SQLAlchemyError as exc:
            # The outbox plays the SMTP server: when it cannot take the message, try again later.
            raise TransientDeliveryError(f"cannot capture the email: {exc}") from exc
        if meanwhile is not None:
            run_meanwhile(meanwhile)

    def close(self) -> None:
        """Nothing to release: each send uses a short session of its own."""


def list_captured(session: Session, store_id: int, limit: int = 50) -> list[CapturedEmail]:
    """The store's most recently captured emails, newest first."""
    query = (
        select(CapturedEmail)
        .where(CapturedEmail.store_id == store_id)
        .order_by(CapturedEmail.created_at.desc(), CapturedEmail.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def get_captured(session: Session, store_id: int, captured_id: int) -> CapturedEmail | None:
    """One captured email of this store, or None (also when it belongs to another store)."""
    query = select(CapturedEmail).where(
        CapturedEmail.id == captured_id, CapturedEmail.store_id == store_id
    )
    return session.scalars(query).one_or_none()
