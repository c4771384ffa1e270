"""Recording an order: idempotent by the store's order id, keeping the contact's rollup current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import Contact, Order


@dataclass(frozen=True)
class NewOrder:
    """An order as the store reports it."""

    external_id: str
    placed_at: datetime
    total: Decimal
    currency: str
    cart_id: int | None = None
    coupon_code: str | None = None
    items: tuple[dict[str, Any], ...] = ()
    source: str = "api"


def record_order(session: Session, contact: Contact, new: NewOrder, now: datetime) -> Order | None:
    """Store the order unless the store already sent it (returns None then); updates the rollup.

    The rollup (orders_count, total_spent, first/last order time) is what the lifecycle tiers read,
    so it is kept here, in the same transaction as the order itself.
    """
    exists = session.scalar(
        select(Order.id).where(Order.store_id == contact.store_id, Order.external_id == new.external_id)
    )
    if exists is not None:
        return None
    order = Order(
        store_id=contact.store_id,
        external_id=new.external_id,
        contact_id=contact.id,
        cart_id=new.cart_id,
        placed_at=new.placed_at,
        total=new.total,
        currency=new.currency,
        coupon_code=new.coupon_code,
        items=list(new.items),
        source=new.source,
        created_at=now,
    )
    session.add(order)
    contact.orders_count += 1
    contact.total_spent = (contact.total_spent or Decimal("0")) + new.total
    if contact.first_order_at is None or new.placed_at < contact.first_order_at:
        contact.first_order_at = new.placed_at
    if contact.last_order_at is None or new.placed_at > contact.last_order_at:
        contact.last_order_at = new.placed_at
    contact.updated_at = now
    session.flush()
    return order
