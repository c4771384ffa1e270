"""Shopify and WooCommerce webhooks: signed ones create orders and carts, unsigned ones store nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from mailer import create_app
from mailer.models import Cart, Contact, Event, Order
from tests.ingest.helpers import fixture, make_shop, sign


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


@pytest.fixture
def shop(database):
    return make_shop(database)


def stored(session, shop) -> int:
    return sum(
        session.scalar(select(func.count()).select_from(model).where(model.store_id == shop.id))
        for model in (Order, Cart, Contact, Event)
    )


def shopify(client, shop, topic: str, body: bytes, signature: str | None = None):
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature or sign(shop.webhook_secret, body)}
    return client.post(f"/webhooks/shopify/{shop.id}", data=body, headers=headers, content_type="application/json")


def woo(client, shop, body: bytes, signature: str | None = None):
    headers = {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Signature": signature or sign(shop.webhook_secret, body)}
    return client.post(f"/webhooks/woocommerce/{shop.id}", data=body, headers=headers, content_type="application/json")


def test_wrong_signatures_are_401_and_store_nothing(client, shop, session) -> None:
    order = json.dumps(fixture("shopify_order.json")).encode()
    assert shopify(client, shop, "orders/create", order, signature=sign("wrong", order)).status_code == 401
    assert shopify(client, shop, "orders/create", order + b" ", signature=sign(shop.webhook_secret, order)).status_code == 401
    unsigned = client.post(f"/webhooks/shopify/{shop.id}", data=order, headers={"X-Shopify-Topic": "orders/create"})
    assert unsigned.status_code == 401
    elsewhere = client.post(f"/webhooks/shopify/{shop.id + 999}", data=order,
                            headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(shop.webhook_secret, order)})
    assert elsewhere.status_code == 401
    assert client.post(f"/webhooks/shopify/{10**30}", data=order, headers={"X-Shopify-Topic": "orders/create"}).status_code == 401
    wc = json.dumps(fixture("woocommerce_order.json")).encode()
    assert woo(client, shop, wc, signature=sign("wrong", wc)).status_code == 401
    assert client.post(f"/webhooks/woocommerce/{shop.id}", data=wc, headers={"X-WC-Webhook-Topic": "order.created"}).status_code == 401
    assert stored(session, shop) == 0


def test_shopify_checkout_then_order_converts_the_cart(client, shop, session) -> None:
    checkout = json.dumps(fixture("shopify_checkout.json")).encode()
    response = shopify(client, shop, "checkouts/create", checkout)
    assert response.status_code == 200 and response.get_json()["accepted"] == 3
    assert shopify(client, shop, "checkouts/create", checkout).get_json()["duplicates"] == 3  # Shopify's retry
    order_body = json.dumps(fixture("shopify_order.json")).encode()
    response = shopify(client, shop, "orders/create", order_body)
    assert response.status_code == 200 and response.get_json()["rejected"] == []
    order = session.scalar(select(Order).where(Order.store_id == shop.id))
    assert (order.external_id, order.source, str(order.total), order.coupon_rejected) == ("820982911946154508", "shopify", "403.00", "unknown")
    shopping = session.scalar(select(Cart).where(Cart.store_id == shop.id))
    assert shopping.status == "converted" and order.cart_id == shopping.id
    person = session.scalar(select(Contact).where(Contact.store_id == shop.id))
    assert (person.email, person.first_name, person.consent, person.orders_count) == ("jon@example.com", "Jon", "granted", 1)


def test_woocommerce_order_and_ping(client, shop, session) -> None:
    ping = client.post(f"/webhooks/woocommerce/{shop.id}", data="webhook_id=15", content_type="application/x-www-form-urlencoded")
    assert ping.status_code == 200 and stored(session, shop) == 0
    body = json.dumps(fixture("woocommerce_order.json")).encode()
    response = woo(client, shop, body)
    assert response.status_code == 200 and response.get_json()["accepted"] == 2
    order = session.scalar(select(Order).where(Order.store_id == shop.id))
    assert (order.external_id, str(order.total), order.currency, order.source) == ("727", "29.35", "EUR", "woocommerce")
    assert session.scalar(select(Contact.last_name).where(Contact.store_id == shop.id)) == "Müller"
