"""Emails kept by the capture transport when no SMTP server is configured (the dev outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId


class CapturedEmail(Base):
    """The exact bytes that would have gone to the SMTP server."""

    __tablename__ = "captured_emails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(BigId)
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
