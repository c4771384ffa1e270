"""`GET`/`DELETE /api/v1/contacts/<email>`: the profile, erasure, and tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailer import create_app
from mailer.clock import utcnow
from mailer.models import (
    AnonymousId,
    Cart,
    CartItem,
    Contact,
    Coupon,
    Event,
    Message,
    Order,
    Store,
    Suppression,
)
from mailer.models.suppression import email_hash
from tests.ingest.helpers import cart, identify, make_coupon, make_shop, track


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


@pytest.fixture
def shops(database, client):
    """Two stores; store A has a customer with an order, a cart, a message and a coupon."""
    a, b = make_shop(database, "a.example", "Shop A"), make_shop(database, "b.example", "Shop B")
    placed = utcnow() - timedelta(days=100)
    batch = [
        identify("i", "Ann@Example.com", anonymous_id="anon", traits={"first_name": "Ann", "consent": "granted"}),
        track("o", "order_placed", {"order_id": "1001", "total": "40.00", "currency": "USD"}, email="ann@example.com",
              timestamp=placed.isoformat()),
        track("c", "cart_updated", cart("cart-1", ("MUG", "12.00", 2)), anonymous_id="anon"),
        track("v", "product_viewed", {"sku": "MUG"}, anonymous_id="anon"),
    ]
    assert client.post("/api/v1/events", json={"batch": batch}, headers=a.bearer).get_json()["accepted"] == 4
    with database.transaction() as session:
        store = session.get(Store, a.id)
        ann = session.scalar(select(Contact).where(Contact.store_id == a.id))
        make_coupon(session, store, ann, utcnow())
    return a, b


def test_profile_has_audience_tier_consent_orders_carts_and_messages(client, shops) -> None:
    a, _b = shops
    response = client.get("/api/v1/contacts/ANN@example.com", headers=a.bearer)
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == "ann@example.com" and body["first_name"] == "Ann"
    assert (body["audience"], body["tier"], body["days_since_last_order"]) == ("one_time", "90", 100)
    assert body["consent"]["status"] == "granted" and body["consent"]["source"] == "api"
    assert body["orders_count"] == 1 and body["last_order"]["order_id"] == "1001" and body["last_order"]["total"] == "40.00"
    assert body["carts"][0]["cart_id"] == "cart-1" and body["carts"][0]["items"][0] == {
        "sku": "MUG", "name": "Item MUG", "price": "12.00", "quantity": 2, "url": None, "image_url": None}
    assert body["messages"] == [{"status": "sent", "campaign": "winback", "step": 1, "due_at": body["messages"][0]["due_at"],
                                 "sent_at": body["messages"][0]["sent_at"]}]


def test_another_stores_key_never_sees_the_contact(client, shops) -> None:
    _a, b = shops
    assert client.get("/api/v1/contacts/ann@example.com", headers=b.bearer).status_code == 404
    assert client.delete("/api/v1/contacts/ann@example.com", headers=b.bearer).status_code == 404
    assert client.get("/api/v1/contacts/nobody@example.com", headers=b.bearer).status_code == 404
    assert client.get("/api/v1/contacts/not%00an-email", headers=b.bearer).status_code == 404
    assert client.get("/api/v1/contacts/ann@example.com").status_code == 401


def test_delete_erases_everything_but_a_hashed_suppression(client, shops, session) -> None:
    a, _b = shops
    response = client.delete("/api/v1/contacts/ann@example.com", headers=a.bearer)
    assert response.status_code == 204
    for model in (Contact, Order, Cart, CartItem, Event, AnonymousId, Message, Coupon):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
    suppression = session.scalar(select(Suppression).where(Suppression.store_id == a.id))
    assert (suppression.reason, suppression.email_hash) == ("erased", email_hash("ann@example.com"))
    assert client.get("/api/v1/contacts/ann@example.com", headers=a.bearer).status_code == 404
