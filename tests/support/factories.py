"""Small builders for test data; each takes a session, flushes and returns the row."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

from sqlalchemy.orm import Session

from mailer.campaigns.sync import sync_campaigns
from mailer.models import Campaign, Cart, CartItem, Contact, Order, Store
from mailer.stores import create_store

_seq = count(1)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_store(session: Session, now: datetime = T0, **settings: object) -> Store:
    """A store with the default campaigns synced; keyword arguments become store settings."""
    store, _secret = create_store(session, name=f"Shop {next(_seq)}", domain=f"shop{next(_seq)}.example", now=now)
    store.postal_address = "1 Market Street, Springfield"
    store.settings = dict(settings)
    sync_campaigns(session, store, now)
    session.flush()
    return store


def make_contact(session: Session, store: Store, now: datetime = T0, **fields: object) -> Contact:
    """A contact with a unique email; `fields` override the defaults."""
    values: dict[str, object] = {
        "email": f"person{next(_seq)}@example.com",
        "first_name": "Ada",
        "consent": "granted",
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    contact = Contact(store_id=store.id, **values)
    session.add(contact)
    session.flush()
    return contact


def make_order(session: Session, contact: Contact, placed_at: datetime, total: str = "50.00", **fields: object) -> Order:
    """An order for the contact, keeping the contact's rollup current."""
    order = Order(
        store_id=contact.store_id, external_id=f"o{next(_seq)}", contact_id=contact.id, placed_at=placed_at,
        total=Decimal(total), currency="USD", items=[{"name": "Blue mug", "sku": "MUG-1", "quantity": 1, "price": total}],
        created_at=placed_at, **fields,
    )
    session.add(order)
    contact.orders_count += 1
    contact.total_spent += Decimal(total)
    contact.first_order_at = contact.first_order_at or placed_at
    contact.last_order_at = max(contact.last_order_at or placed_at, placed_at)
    session.flush()
    return order


def campaign(session: Session, store: Store, key: str) -> Campaign:
    """The store's campaign with this key."""
    from sqlalchemy import select

    found = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == key))
    assert found is not None, key
    return found


def make_cart(session: Session, contact: Contact | None, last_activity_at: datetime, items: int = 2, **fields: object) -> Cart:
    """An open cart with `items` lines, last active at the given time."""
    store_id = contact.store_id if contact is not None else fields.pop("store_id")
    cart = Cart(
        store_id=store_id, external_id=f"cart-{next(_seq)}", contact_id=contact.id if contact else None,
        currency="USD", restore_url="https://shop.example/cart/restore", status="open",
        last_activity_at=last_activity_at, created_at=last_activity_at, **fields,
    )
    for position in range(items):
        cart.items.append(CartItem(position=position, sku=f"SKU-{position}", name=f"Item number {position}",
                                   price=Decimal("10.00") + position, quantity=1, url=f"https://shop.example/p/{position}",
                                   image_url=f"https://shop.example/img/{position}.jpg"))
    cart.value = sum((i.price * i.quantity for i in cart.items), Decimal("0"))
    session.add(cart)
    session.flush()
    return cart
