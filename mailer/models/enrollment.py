"""A contact's passage through one campaign for one lapse or one cart."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

GROUPS = ("treatment", "control")
ENROLLMENT_STATES = ("active", "completed", "exited")


class Enrollment(Base):
    """Unique per campaign × contact × subject, so a lapse or a cart is entered once."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "subject_key"),
        Index("ix_enrollments_contact_status", "contact_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # What this enrollment is about: "lapse:<last order time>" or "cart:<cart id>:<abandoned at>".
    subject_key: Mapped[str] = mapped_column(String(128))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    tier: Mapped[int | None]
    group: Mapped[str] = mapped_column(String(16), default="treatment")
    status: Mapped[str] = mapped_column(String(16), default="active")
    exit_reason: Mapped[str | None] = mapped_column(String(32))
    anchor_at: Mapped[datetime]  # the instant step delays count from
    entered_at: Mapped[datetime]
    exited_at: Mapped[datetime | None]
