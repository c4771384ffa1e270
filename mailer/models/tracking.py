"""What recipients (or machines on their behalf) did with a message."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

TRACKING_KINDS = ("open", "click", "unsubscribe", "bounce", "complaint")


class TrackingEvent(Base):
    """An open, click, unsubscribe or bounce; `machine` ones are counted apart, never attributed."""

    __tablename__ = "tracking_events"
    __table_args__ = (
        Index("ix_tracking_message_kind", "message_id", "kind"),
        Index("ix_tracking_contact_time", "contact_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"))
    machine: Mapped[bool] = mapped_column(default=False)
    machine_reason: Mapped[str | None] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
