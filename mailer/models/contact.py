"""A shopper known to a store: identity, consent, the order rollup and anonymous ids."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

CONSENT_STATES = ("unknown", "granted", "denied")


class Contact(Base):
    """One person per store, keyed by normalized email; carries the rollup the tiers read."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("store_id", "email"),
        # The tier query reads (store, orders_count, last_order_at) only: an index-only scan.
        Index("ix_contacts_store_rollup", "store_id", "orders_count", "last_order_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    consent: Mapped[str] = mapped_column(String(16), default="unknown")
    consent_source: Mapped[str | None] = mapped_column(String(64))
    consent_at: Mapped[datetime | None]
    orders_count: Mapped[int] = mapped_column(default=0)
    total_spent: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # The latest reason for leaving the customer gave (see models/reason.py for the history).
    reason: Mapped[str | None] = mapped_column(String(32))
    reason_at: Mapped[datetime | None]
    # The frequency cap's slot: who last took it and when (see outbox.prepare).
    last_emailed_at: Mapped[datetime | None]
    last_emailed_message_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def full_name(self) -> str:
        """First and last name joined, or empty."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class AnonymousId(Base):
    """A browser's first-party anonymous id, attached to a contact once they identify."""

    __tablename__ = "anonymous_ids"
    __table_args__ = (UniqueConstraint("store_id", "anonymous_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    anonymous_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
