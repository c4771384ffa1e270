"""Mapping Shopify and WooCommerce payloads onto our events, and checking their signatures (pure)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal

from mailer.errors import ValidationError
from mailer.ingest.schema import CartUpdated, CheckoutStarted, OrderPlaced, Traits, validate_event
from mailer.ingest.webhooks import (
    is_woocommerce_ping,
    shopify_events,
    signature_valid,
    woocommerce_events,
)
from tests.ingest.helpers import fixture, sign

NOW = datetime(2026, 1, 6, tzinfo=UTC)


def validated(events: list[dict]) -> list:
    return [validate_event(e, now=NOW, public=False) for e in events]


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id": 1}'
    assert signature_valid("s3cret", body, sign("s3cret", body))
    assert not signature_valid("s3cret", body + b" ", sign("s3cret", body))
    assert not signature_valid("other", body, sign("s3cret", body))
    assert not signature_valid("s3cret", body, None) and not signature_valid("s3cret", body, "")


def test_shopify_order_becomes_identify_and_order_placed() -> None:
    identify, order = validated(shopify_events("orders/create", fixture("shopify_order.json")))
    assert identify.email == "jon@example.com"
    assert identify.payload == Traits(first_name="Jon", last_name="Snow", consent="granted", consent_source="shopify",
                                      consent_at=datetime(2026, 1, 5, 15, 15, tzinfo=UTC))
    assert order.event_id == "shopify:order:820982911946154508"
    assert order.occurred_at == datetime(2026, 1, 5, 15, 15, tzinfo=UTC)
    assert isinstance(order.payload, OrderPlaced)
    assert (order.payload.order_id, order.payload.total, order.payload.currency) == ("820982911946154508", Decimal("403.00"), "USD")
    assert order.payload.cart_id == "68778783ad298f1c80c3bafcddeea02f" and order.payload.coupon == "SHOP-ABCDEFGH"
    assert [(i.sku, i.name, i.quantity) for i in order.payload.items] == [
        ("IPOD2008GREEN", "IPod Nano - 8GB", 1), ("808950811", "IPod Nano - 8GB", 1)
    ]


def test_shopify_checkout_becomes_a_cart_and_each_update_is_a_new_event() -> None:
    payload = fixture("shopify_checkout.json")
    _identify, cart, started = validated(shopify_events("checkouts/create", payload))
    assert isinstance(cart.payload, CartUpdated) and isinstance(started.payload, CheckoutStarted)
    assert cart.payload.cart_id == started.payload.cart_id == "68778783ad298f1c80c3bafcddeea02f"
    assert cart.payload.value == Decimal("398.00") and cart.payload.items[0].quantity == 2
    assert cart.payload.restore_url is not None and cart.payload.restore_url.startswith("https://checkout.local/")
    updated = dict(payload, updated_at="2026-01-05T09:50:00-05:00")
    later = validated(shopify_events("checkouts/update", updated))
    assert later[1].event_id != cart.event_id and len(later) == 2  # no second checkout_started
    assert shopify_events("checkouts/update", dict(payload, completed_at="2026-01-05T10:00:00-05:00")) == []
    assert shopify_events("checkouts/update", dict(payload, email=None, customer=None)) == []
    assert shopify_events("products/create", payload) == []


def test_woocommerce_order_maps_billing_email_items_and_coupon() -> None:
    identify, order = validated(woocommerce_events("order.created", fixture("woocommerce_order.json")))
    assert identify.email == order.email == "greta@example.org"
    assert identify.payload == Traits(first_name="Greta", last_name="Müller")
    assert order.occurred_at == datetime(2026, 1, 5, 15, 28, 2, tzinfo=UTC)  # date_created_gmt is UTC
    assert isinstance(order.payload, OrderPlaced)
    assert (order.payload.order_id, order.payload.total, order.payload.currency, order.payload.coupon) == (
        "727", Decimal("29.35"), "EUR", "SHOP-ABCDEFGH")
    assert [(i.sku, i.price, i.quantity) for i in order.payload.items] == [("93", Decimal("3.00"), 2), ("SYI-BLK-M", Decimal("12.00"), 1)]
    assert woocommerce_events("order.created", dict(fixture("woocommerce_order.json"), status="failed")) == []
    assert woocommerce_events("order.updated", fixture("woocommerce_order.json")) == []


def test_woocommerce_ping_is_recognised() -> None:
    assert is_woocommerce_ping(b"webhook_id=15", "application/x-www-form-urlencoded")
    assert not is_woocommerce_ping(b"webhook_id=15", "application/json")
    assert not is_woocommerce_ping(b'{"webhook_id": 15}', "application/x-www-form-urlencoded")


def test_malformed_payloads_map_to_refusals_not_crashes() -> None:
    for payload in ({}, {"id": None, "line_items": "x", "customer": 5}, {"id": 1, "discount_codes": [None, 3]}):
        for event in shopify_events("orders/create", payload):
            with contextlib.suppress(ValidationError):  # anything else would fail the test
                validate_event(event, now=NOW, public=False)
    assert woocommerce_events("order.created", {"billing": [], "line_items": {}})[0].get("id") is None
