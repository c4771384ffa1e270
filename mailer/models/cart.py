"""A shopping cart and its current items."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, BigId

CART_STATES = ("open", "emptied", "converted")


class Cart(Base):
    """A cart as it is now; `last_activity_at` drives abandonment."""

    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_carts_abandonment", "store_id", "status", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    restore_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    checkout_started_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime]
    abandoned_at: Mapped[datetime | None]
    converted_order_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime]

    items: Mapped[list[CartItem]] = relationship(
        order_by="CartItem.position", cascade="all, delete-orphan", lazy="selectin"
    )


class CartItem(Base):
    """One line of a cart as last reported by the store."""

    __tablename__ = "cart_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    sku: Mapped[str] = mapped_column(String(128), default="")
    name: Mapped[str] = mapped_column(String(500), default="")
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    quantity: Mapped[int] = mapped_column(default=1)
    url: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
