"""The pure decision of what a cart_updated event changes on a stored cart."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mailer.ingest.carts import CartState, cart_update_change, item_lines, new_cart_values
from mailer.ingest.schema import CartUpdated, Item

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MUG = Item(sku="MUG", name="Mug", price=Decimal("12.00"), quantity=1)
TEA = Item(sku="TEA", name="Green tea", price=Decimal("4.50"), quantity=2, url="https://shop.example/p/tea",
           image_url="https://shop.example/tea.jpg")


def state(**fields) -> CartState:
    base = {"id": 7, "contact_id": None, "anonymous_id": "a1", "status": "open", "currency": "USD",
            "value": Decimal("4.50"), "restore_url": None, "last_activity_at": T, "items": item_lines([TEA])}
    return CartState(**{**base, **fields})


def update(*items: Item, **fields) -> CartUpdated:
    return CartUpdated(**{"cart_id": "c1", "items": items, "value": Decimal("12.00"), **fields})


def change(cart: CartState, data: CartUpdated, at: datetime, contact_id=None, anonymous_id="a1"):
    return cart_update_change(cart, data, at, contact_id=contact_id, anonymous_id=anonymous_id, store_currency="EUR")


def test_a_newer_update_replaces_items_and_moves_the_activity() -> None:
    result = change(state(), update(MUG, restore_url="https://shop.example/cart"), T + timedelta(minutes=5))
    assert result.replace_items
    assert result.values == {"value": Decimal("12.00"), "restore_url": "https://shop.example/cart",
                             "last_activity_at": T + timedelta(minutes=5)}  # currency and status were already so


def test_an_older_update_arriving_late_never_rewinds_the_cart() -> None:
    result = change(state(), update(), T - timedelta(minutes=5))
    assert (result.replace_items, result.values) == (False, {})


def test_a_cart_that_only_saw_checkout_takes_items_of_any_age_without_moving_its_activity() -> None:
    result = change(state(items=()), update(MUG), T - timedelta(minutes=5))
    assert result.replace_items and result.values == {"value": Decimal("12.00")}  # still open, activity unmoved


def test_an_empty_update_empties_the_cart_but_a_bought_cart_stays_bought() -> None:
    assert change(state(), update(), T + timedelta(seconds=1)).replace_items
    assert change(state(), update(), T + timedelta(seconds=1)).values["status"] == "emptied"
    assert "status" not in change(state(status="converted"), update(), T + timedelta(seconds=1)).values


def test_the_later_events_name_the_owner_of_an_anonymous_cart_but_never_take_it_from_one() -> None:
    assert change(state(), update(), T - timedelta(days=1), contact_id=5).values == {"contact_id": 5}
    assert change(state(contact_id=3), update(), T - timedelta(days=1), contact_id=5).values == {}
    assert change(state(anonymous_id=None), update(), T - timedelta(days=1), anonymous_id="a2").values == {"anonymous_id": "a2"}


def test_the_currency_falls_back_to_the_carts_then_the_stores() -> None:
    assert change(state(), update(MUG, currency="GBP"), T).values["currency"] == "GBP"
    assert change(state(currency=""), update(MUG), T).values["currency"] == "EUR"
    values = new_cart_values(1, update(), T, contact_id=None, anonymous_id="a1", store_currency="EUR", now=T)
    assert (values["currency"], values["status"], values["last_activity_at"]) == ("EUR", "emptied", T)


def test_the_same_cart_reported_again_changes_nothing() -> None:
    stored = state(value=Decimal("16.50"), restore_url="https://shop.example/cart", items=item_lines([MUG, TEA]))
    again = update(MUG, TEA, value=Decimal("16.5"), currency="USD", restore_url="https://shop.example/cart")
    assert change(stored, again, T) == change(stored, update(MUG, TEA, value=Decimal("16.50")), T)
    assert (change(stored, again, T).replace_items, change(stored, again, T).values) == (False, {})
    later = change(stored, again, T + timedelta(minutes=1))  # only the activity moves
    assert (later.replace_items, later.values) == (False, {"last_activity_at": T + timedelta(minutes=1)})


@pytest.mark.parametrize("edit", [
    {"sku": "TEA-2"}, {"name": "Black tea"}, {"price": Decimal("4.49")}, {"quantity": 3},
    {"url": None}, {"url": "https://shop.example/p/tea?v=2"}, {"image_url": None},
])
def test_items_are_replaced_when_any_column_of_a_line_differs(edit) -> None:
    stored = state(value=Decimal("16.50"), items=item_lines([MUG, TEA]))
    assert change(stored, update(MUG, replace(TEA, **edit), value=Decimal("16.50")), T).replace_items


def test_items_are_replaced_when_lines_move_or_one_is_added_or_removed() -> None:
    stored = state(value=Decimal("16.50"), items=item_lines([MUG, TEA]))
    for items in ([TEA, MUG], [MUG], [MUG, TEA, MUG], []):
        assert change(stored, update(*items, value=Decimal("16.50")), T).replace_items, items
    assert item_lines([MUG, TEA])[1] == (1, "TEA", "Green tea", Decimal("4.50"), 2, "https://shop.example/p/tea",
                                         "https://shop.example/tea.jpg")
