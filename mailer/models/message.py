"""The outbox: one row per enrollment × step, whose status moves once, guarded by the row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

# planned → sending → sent | failed | skipped; `sending` rows whose lease ran out are reclaimed.
MESSAGE_STATES = ("planned", "sending", "sent", "failed", "skipped")


class Message(Base):
    """An email that will be, is being, or was sent; the UNIQUE key makes it exactly one."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_index"),
        Index("ix_messages_claim", "status", "due_at"),
        Index("ix_messages_contact_sent", "contact_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    step_index: Mapped[int]
    # A follow-up shaped by the customer's reason differs from its campaign step in these (None: as the step).
    discount_override: Mapped[int | None]
    template_override: Mapped[str | None] = mapped_column(String(200))
    subject_override: Mapped[str | None] = mapped_column(String(300))
    is_control: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    to_email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    message_id_header: Mapped[str | None] = mapped_column(String(255))
    template_version: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
