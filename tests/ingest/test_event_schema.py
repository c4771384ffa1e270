"""The event schema: strict, typed, with precise messages (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mailer.errors import ValidationError
from mailer.ingest.schema import CartUpdated, OrderPlaced, Traits, validate_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def valid(raw: dict, *, public: bool = False, link_domain: str | None = None):
    return validate_event(raw, now=NOW, public=public, link_domain=link_domain)


def error(raw: object, *, public: bool = False, link_domain: str | None = None) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_event(raw, now=NOW, public=public, link_domain=link_domain)
    return caught.value.message


def cart_event(**properties: object) -> dict:
    base = {"cart_id": "c1", "items": [{"sku": "A", "name": "Mug", "price": "9.99", "quantity": 2}]}
    base.update(properties)
    return {"id": "e1", "type": "track", "event": "cart_updated", "anonymous_id": "a1", "properties": base}


def test_identify_normalizes_email_and_reads_traits() -> None:
    event = valid({"id": "e1", "type": "identify", "email": " Ann@Example.COM ", "traits": {"first_name": " Ann ", "consent": "granted"}})
    assert event.email == "ann@example.com" and event.occurred_at == NOW
    assert event.payload == Traits(first_name="Ann", consent="granted", consent_source="api", consent_at=NOW)


def test_cart_items_become_decimals_and_value_defaults_to_their_sum() -> None:
    event = valid(cart_event())
    assert isinstance(event.payload, CartUpdated)
    assert event.payload.items[0].price == Decimal("9.99") and event.payload.value == Decimal("19.98")
    assert event.stored_properties()["items"][0]["price"] == "9.99"  # never a float in the database
    assert valid(cart_event(value=12.5)).payload.value == Decimal("12.50")


def test_order_accepts_numeric_ids_and_string_totals() -> None:
    event = valid({"id": "o", "type": "track", "event": "order_placed", "email": "a@b.co",
                   "properties": {"order_id": 1001, "total": "30.10", "currency": "eur", "coupon": " shop-x "}})
    assert event.payload == OrderPlaced(order_id="1001", total=Decimal("30.10"), currency="EUR", coupon="shop-x")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nope", "event must be an object"),
        ({"id": "e", "type": "track", "event": "cart_updated", "anonymous_id": "a", "extra": 1}, "unknown key 'extra'"),
        ({"type": "identify", "email": "a@b.co"}, "id: is required"),
        ({"id": 5, "type": "identify", "email": "a@b.co"}, "id: must be a string"),
        ({"id": "x" * 129, "type": "identify", "email": "a@b.co"}, "id: must be at most 128 characters"),
        ({"id": "e\x00", "type": "identify", "email": "a@b.co"}, "id: must not contain control characters"),
        ({"id": "e", "type": "page", "email": "a@b.co"}, "type: must be \"identify\" or \"track\""),
        ({"id": "e", "type": "identify"}, "an event needs an anonymous_id or an email"),
        ({"id": "e", "type": "identify", "email": "not-an-email"}, "email: invalid email address"),
        ({"id": "e", "type": "track", "event": "bought", "email": "a@b.co"}, "event: must be one of"),
        ({"id": "e", "type": "identify", "email": "a@b.co", "traits": {"consent": "yes"}}, "traits.consent: must be"),
        ({"id": "e", "type": "identify", "email": "a@b.co", "traits": {"timezone": "Mars/Base"}}, "traits.timezone"),
        ({"id": "e", "type": "identify", "email": "a@b.co", "timestamp": "yesterday"}, "timestamp: must be an ISO 8601 time"),
        ({"id": "e", "type": "identify", "email": "\ud800@b.co"}, "email: is not valid Unicode text"),
    ],
)
def test_refusals_name_the_field(raw: object, message: str) -> None:
    assert message in error(raw)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"sku": "A", "price": -1}], "properties.items[0].price: must be a non-negative number"),
        ([{"sku": "A", "price": "1"}, {"sku": "B", "price": "abc"}], "properties.items[1].price: must be a non-negative number"),
        ([{"sku": "A", "price": True}], "properties.items[0].price: must be a non-negative number"),
        ([{"sku": "A", "price": "NaN"}], "properties.items[0].price: must be a non-negative number"),
        ([{"sku": "A", "price": "1e400"}], "properties.items[0].price: must be a non-negative number"),
        ([{"sku": "A", "price": 10**15}], "properties.items[0].price: is too large"),
        ([{"sku": "A", "price": 1, "quantity": 0}], "properties.items[0].quantity: must be between 1 and 10000"),
        ([{"sku": "A", "price": 1, "quantity": 2.5}], "properties.items[0].quantity: must be a whole number"),
        ([{"sku": "A", "price": 1, "colour": "red"}], "properties.items[0]: unknown key 'colour'"),
        ([{"sku": "A", "price": 1, "url": "javascript:alert(1)"}], "properties.items[0].url: must be an http(s) URL"),
        ([{"sku": "A", "price": 1, "image_url": "data:image/png;base64,AAAA"}], "properties.items[0].image_url: must be an http(s) URL"),
        ([{"sku": "A", "price": 1}] * 201, "properties.items: must have at most 200 items"),
        ("mug", "properties.items: must be a list"),
    ],
)
def test_cart_item_refusals_are_precise(items: object, message: str) -> None:
    assert error(cart_event(items=items)).startswith(message)


def test_hostile_names_are_kept_as_text_but_trimmed_to_200_characters() -> None:
    event = valid(cart_event(items=[{"sku": "A", "name": "<script>alert(1)</script>\x00" + "x" * 10_000, "price": 1}]))
    assert isinstance(event.payload, CartUpdated)
    name = event.payload.items[0].name
    assert name.startswith("<script>alert(1)</script>") and len(name) == 200 and "\x00" not in name


def test_public_links_must_be_on_the_store_domain_but_images_may_use_a_cdn() -> None:
    ok = valid(cart_event(restore_url="https://www.shop.example/cart", items=[
        {"sku": "A", "price": 1, "url": "https://shop.example/p/a", "image_url": "https://cdn.images.example/a.png"}
    ]), public=True, link_domain="shop.example")
    assert isinstance(ok.payload, CartUpdated) and ok.payload.restore_url == "https://www.shop.example/cart"
    message = error(cart_event(restore_url="https://evil.example/phish"), public=True, link_domain="shop.example")
    assert message == "properties.restore_url: must be on the store's domain (shop.example)"
    assert "must be an http(s) URL" in error(cart_event(restore_url="JaVaScRiPt:alert(1)"))


def test_public_timestamps_must_be_near_the_present_server_ones_may_be_history() -> None:
    old = {"id": "e", "type": "identify", "email": "a@b.co", "timestamp": (NOW - timedelta(days=3)).isoformat()}
    assert "more than 24 hours from the present" in error(old, public=True)
    assert valid(old).occurred_at == NOW - timedelta(days=3)
    future = dict(old, timestamp=(NOW + timedelta(hours=1)).isoformat())
    assert error(future) == "timestamp: is in the future"
    assert valid(dict(old, timestamp="2026-03-01T13:00:00+02:00")).occurred_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def test_identify_and_track_keep_their_own_fields() -> None:
    assert "properties: is only for track events" in error({"id": "e", "type": "identify", "email": "a@b.co", "properties": {}})
    assert "traits: is only for identify events" in error({"id": "e", "type": "track", "event": "product_viewed", "email": "a@b.co", "traits": {}})
    assert error({"id": "e", "type": "identify", "email": "a@b.co", "traits": {"email": "c@d.co"}}) == "traits.email: differs from email"
    assert valid({"id": "e", "type": "identify", "anonymous_id": "a", "traits": {"email": "C@d.co"}}).email == "c@d.co"


def test_order_needs_its_id_total_and_currency() -> None:
    base = {"id": "o", "type": "track", "event": "order_placed", "email": "a@b.co"}
    assert error(dict(base, properties={"total": "1", "currency": "USD"})) == "properties.order_id: is required"
    assert error(dict(base, properties={"order_id": "1", "total": "1", "currency": "dollars"})) == (
        "properties.currency: must be a 3-letter currency code like USD"
    )
