"""An order placed at the store, the fact every lifecycle rule and report counts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId


class Order(Base):
    """One order; `(store_id, external_id)` is unique so imports and webhooks are idempotent."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_orders_contact_time", "contact_id", "placed_at"),
        Index("ix_orders_store_time", "store_id", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"))
    placed_at: Mapped[datetime]
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    coupon_rejected: Mapped[str | None] = mapped_column(String(16))  # used | expired | unknown
    items: Mapped[list[Any]] = mapped_column(default=list)
    # The one message this order is credited to (DESIGN §3 Attribution), and why.
    attributed_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    attribution: Mapped[str | None] = mapped_column(String(16))  # coupon | click | open
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime]
