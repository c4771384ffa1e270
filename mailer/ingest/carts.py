"""Applying `cart_updated`: the cart's stored state, the pure decision of what an update changes, Core writes.

This is the snippet's busiest write after product views, so it runs as a few prebuilt Core
statements (read the state with its items, insert or update the cart, replace its items) instead
of loading the cart and its items through the ORM. The snippet reports the whole cart on every
change, often as it already was: what is stored is left alone, since rewriting a row even with
the same values leaves a dead row version for vacuum. A Cart already loaded in the session is
expired after a write, so ORM readers in the same session never see it stale.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Update, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from mailer.db import expire_loaded
from mailer.ingest.schema import CartUpdated, Item
from mailer.models import Cart, CartItem

# A cart line in the columns an update would write, position first: (position, sku, name, price,
# quantity, url, image_url).
ItemLine = tuple[int, str, str, Decimal, int, str | None, str | None]
_ITEM_COLUMNS = ("position", "sku", "name", "price", "quantity", "url", "image_url")


def item_lines(items: Sequence[Item]) -> tuple[ItemLine, ...]:
    """The lines a cart holds once `items` are stored, as stored lines are compared."""
    return tuple(
        (position, item.sku, item.name, item.price, item.quantity, item.url, item.image_url)
        for position, item in enumerate(items)
    )


@dataclass(frozen=True)
class CartState:
    """What deciding an update needs of a stored cart: the columns an update sets, and its lines in order."""

    id: int
    contact_id: int | None
    anonymous_id: str | None
    status: str
    currency: str
    value: Decimal
    restore_url: str | None
    last_activity_at: datetime
    items: tuple[ItemLine, ...]

    @property
    def has_items(self) -> bool:
        """True when the cart holds at least one line."""
        return bool(self.items)


@dataclass(frozen=True)
class CartChange:
    """The columns an update changes on a stored cart (only those that differ), and whether its items are replaced."""

    values: dict[str, Any]
    replace_items: bool


def cart_update_change(
    cart: CartState, data: CartUpdated, occurred_at: datetime, *, contact_id: int | None, anonymous_id: str | None,
    store_currency: str,
) -> CartChange:
    """What a `cart_updated` event changes on a stored cart; an older event (arriving late) never rewinds it.

    Columns that already hold their new value are left out, and items equal to the stored lines
    are not replaced: the snippet repeats the whole cart on every change.
    """
    values: dict[str, Any] = {}
    # A cart started anonymously belongs to whoever the later events name.
    if cart.contact_id is None and contact_id is not None:
        values["contact_id"] = contact_id
    if cart.anonymous_id is None and anonymous_id is not None:
        values["anonymous_id"] = anonymous_id
    newer = occurred_at >= cart.last_activity_at
    # A cart that only saw checkout_started so far has no items of any age: take these.
    never_filled = cart.status == "open" and not cart.has_items
    replace = newer or never_filled
    if replace:
        values["value"] = data.value
        values["currency"] = data.currency or cart.currency or store_currency
        if data.restore_url is not None:
            values["restore_url"] = data.restore_url
        if cart.status != "converted":  # a bought cart stays bought: no reminders after a purchase
            values["status"] = "open" if data.items else "emptied"
    if newer:
        values["last_activity_at"] = occurred_at
    changed = {name: value for name, value in values.items() if value != getattr(cart, name)}
    return CartChange(changed, replace and cart.items != item_lines(data.items))


def new_cart_values(
    store_id: int, data: CartUpdated, occurred_at: datetime, *, contact_id: int | None, anonymous_id: str | None,
    store_currency: str, now: datetime,
) -> dict[str, Any]:
    """The columns of a cart first reported by this event."""
    return {
        "store_id": store_id, "external_id": data.cart_id, "contact_id": contact_id, "anonymous_id": anonymous_id,
        "currency": data.currency or store_currency, "value": data.value, "restore_url": data.restore_url,
        "status": "open" if data.items else "emptied", "last_activity_at": occurred_at, "created_at": now,
    }


# Built once with bound parameters: building a statement costs more Python than running it.
_carts, _items = Cart.__table__, CartItem.__table__
# The cart and its lines in one round trip: one row per line (one with NULL lines for an empty cart).
_STATE = (
    select(
        _carts.c.id, _carts.c.contact_id, _carts.c.anonymous_id, _carts.c.status, _carts.c.currency,
        _carts.c.value, _carts.c.restore_url, _carts.c.last_activity_at, *(_items.c[name] for name in _ITEM_COLUMNS),
    )
    .select_from(_carts.outerjoin(_items, _items.c.cart_id == _carts.c.id))
    .where(_carts.c.store_id == bindparam("store_id"), _carts.c.external_id == bindparam("external_id"))
    .order_by(_items.c.position, _items.c.id)
)
_CART_COLUMNS = 8  # the cart's columns before its line's in a _STATE row
_INSERT_CART = insert(_carts).returning(_carts.c.id)
_DELETE_ITEMS = delete(_items).where(_items.c.cart_id == bindparam("cart_id"))
_INSERT_ITEMS = insert(_items)


@functools.cache
def _cart_update(columns: frozenset[str]) -> Update:
    # One prebuilt UPDATE per set of changed columns (a handful occur: most updates set only
    # the activity time), so its cache key is computed once instead of on every cart update.
    return update(_carts).where(_carts.c.id == bindparam("this_cart")).values({name: bindparam(f"new_{name}") for name in columns})


def load_cart_state(session: Session, store_id: int, external_id: str) -> CartState | None:
    """The stored cart with this (store-given) id and its lines, as the decision needs it."""
    rows = session.connection().execute(_STATE, {"store_id": store_id, "external_id": external_id}).all()
    if not rows:
        return None
    lines = tuple(tuple(row[_CART_COLUMNS:]) for row in rows if row.position is not None)  # position is NOT NULL
    return CartState(*rows[0][:_CART_COLUMNS], items=lines)


def upsert_cart(
    session: Session, store_id: int, store_currency: str, data: CartUpdated, occurred_at: datetime, *,
    contact_id: int | None, anonymous_id: str | None, now: datetime,
) -> int:
    """Create or update the cart with its current items; returns the cart's id."""
    connection = session.connection()
    state = load_cart_state(session, store_id, data.cart_id)
    if state is None:
        values = new_cart_values(store_id, data, occurred_at, contact_id=contact_id, anonymous_id=anonymous_id,
                                 store_currency=store_currency, now=now)
        cart_id = int(connection.execute(_INSERT_CART, values).scalar_one())
        _insert_items(session, cart_id, data)
        return cart_id
    change = cart_update_change(state, data, occurred_at, contact_id=contact_id, anonymous_id=anonymous_id,
                                store_currency=store_currency)
    if change.values:
        connection.execute(_cart_update(frozenset(change.values)),
                           {"this_cart": state.id, **{f"new_{name}": value for name, value in change.values.items()}})
    if change.replace_items:
        connection.execute(_DELETE_ITEMS, {"cart_id": state.id})
        _insert_items(session, state.id, data)
    if change.values or change.replace_items:
        expire_loaded(session, Cart, state.id)
    return state.id


def _insert_items(session: Session, cart_id: int, data: CartUpdated) -> None:
    if not data.items:
        return
    session.connection().execute(_INSERT_ITEMS, [
        {"cart_id": cart_id, **dict(zip(_ITEM_COLUMNS, line, strict=True))} for line in item_lines(data.items)
    ])
