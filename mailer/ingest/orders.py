"""Recording an order: idempotent by the store's order id, keeping the contact's rollup current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
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
    add_to_rollup(contact, new, now)
    session.flush()
    return order


def add_to_rollup(contact: Contact, new: NewOrder, now: datetime) -> None:
    """Count an order in the contact's rollup (orders, total spent, first and last order time)."""
    contact.orders_count = (contact.orders_count or 0) + 1
    contact.total_spent = (contact.total_spent or Decimal("0")) + new.total
    if contact.first_order_at is None or new.placed_at < contact.first_order_at:
        contact.first_order_at = new.placed_at
    if contact.last_order_at is None or new.placed_at > contact.last_order_at:
        contact.last_order_at = new.placed_at
    contact.updated_at = now


def record_orders(session: Session, orders: list[tuple[Contact, NewOrder]], now: datetime) -> int:
    """Insert many new orders in one statement and update their contacts' rollups (bulk imports).

    The caller has already left out order ids the store has; returns how many were inserted.
    """
    rows = []
    for contact, new in orders:
        rows.append({
            "store_id": contact.store_id, "external_id": new.external_id, "contact_id": contact.id,
            "cart_id": new.cart_id, "placed_at": new.placed_at, "total": new.total, "currency": new.currency,
            "coupon_code": new.coupon_code, "items": list(new.items), "source": new.source, "created_at": now,
        })
        add_to_rollup(contact, new, now)
    if rows:
        session.execute(insert(Order), rows)
    session.flush()
    return len(rows)
