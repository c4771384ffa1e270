"""`POST /api/v1/events` and `POST /api/v1/track`: answers per DESIGN §4, good events kept beside bad ones."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailer import create_app
from mailer.clock import utcnow
from mailer.models import Cart, CartItem, Contact, Event
from tests.ingest.helpers import cart, identify, make_shop, track


@pytest.fixture
def shop(database):
    return make_shop(database)


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


def events_of(session, shop) -> list[str]:
    return sorted(session.scalars(select(Event.event_id).where(Event.store_id == shop.id)))


def test_a_batch_keeps_its_good_events_beside_hostile_ones(client, shop, session) -> None:
    batch = [
        track("good-1", "cart_updated", cart("c1", ("MUG", "12.50", 2), restore_url="https://evil.example/x"), email="Ann@Example.com"),
        track("script", "cart_updated", {"cart_id": "c2", "items": [
            {"sku": "S", "name": "<script>alert('x')</script>" + "A" * 10_000, "price": 3, "url": "https://anywhere.example/p"}]},
            email="ann@example.com"),
        track("js-link", "cart_updated", {"cart_id": "c3", "items": [{"sku": "S", "price": 1, "url": "javascript:alert(1)"}]},
              email="ann@example.com"),
        {"id": "extra", "type": "identify", "email": "ann@example.com", "isAdmin": True},
        identify("good-1", "ann@example.com"),  # replayed id
        "not an event",
    ]
    response = client.post("/api/v1/events", json={"batch": batch}, headers=shop.bearer)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert body["rejected"] == [
        {"index": 2, "error": "properties.items[0].url: must be an http(s) URL"},
        {"index": 3, "error": "unknown key 'isAdmin' (allowed: anonymous_id, email, event, id, properties, timestamp, traits, type)"},
        {"index": 5, "error": "event must be an object"},
    ]
    assert events_of(session, shop) == ["good-1", "script"]
    # The server API is trusted with links off the store's domain; hostile text is kept as text, trimmed.
    name = session.scalar(select(CartItem.name).join(Cart).where(Cart.store_id == shop.id, Cart.external_id == "c2"))
    assert name.startswith("<script>alert('x')</script>") and len(name) == 200
    assert session.scalar(select(func.count()).select_from(Contact).where(Contact.store_id == shop.id)) == 1
    assert session.scalar(select(Cart.external_id).where(Cart.store_id == shop.id, Cart.external_id == "c3")) is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not UTF-8 text"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"batch": {"id": 1}}', "batch must be a list of events"),
        (b'{"batch": [], "key": "x"}', "unknown key 'key'"),
        (b'{"batch": [{"id": "a", "type": "identify", "email": "a@b.co", "timestamp": NaN}]}', "body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON"),
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(client, shop, session, body: bytes, error: str) -> None:
    response = client.post("/api/v1/events", data=body, headers=shop.bearer, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(error)
    assert events_of(session, shop) == []


def test_too_large_bodies_and_batches_are_413(client, shop, session) -> None:
    huge = json.dumps({"batch": [identify("x", "a@b.co", traits={"first_name": "x" * (1024 * 1024)})]})
    response = client.post("/api/v1/events", data=huge, headers=shop.bearer, content_type="application/json")
    assert response.status_code == 413 and "over 1048576 bytes" in response.get_json()["error"]
    # No Content-Length (a chunked upload): the size is checked while reading, too.
    chunked = client.post("/api/v1/events", data=huge, headers=shop.bearer, content_type="application/json",
                          environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    assert chunked.status_code == 413
    many = {"batch": [identify(f"e{i}", "a@b.co") for i in range(501)]}
    response = client.post("/api/v1/events", json=many, headers=shop.bearer)
    assert response.status_code == 413 and "at most 500" in response.get_json()["error"]
    assert events_of(session, shop) == []
    exactly = {"batch": [identify(f"e{i}", "a@b.co") for i in range(500)]}
    assert client.post("/api/v1/events", json=exactly, headers=shop.bearer).get_json()["accepted"] == 500


def test_unknown_keys_are_401(client, shop, session) -> None:
    batch = {"batch": [identify("e", "a@b.co")]}
    assert client.post("/api/v1/events", json=batch).status_code == 401
    assert client.post("/api/v1/events", json=batch, headers={"Authorization": "Bearer sk_nope"}).status_code == 401
    assert client.post("/api/v1/events", json=batch, headers={"Authorization": f"Bearer {shop.public_key}"}).status_code == 401
    assert client.post("/api/v1/track", json={"key": "pk_nope", **batch}).status_code == 401
    assert client.post("/api/v1/track", json=batch).status_code == 401
    assert events_of(session, shop) == []


def test_track_takes_text_plain_beacons_and_answers_cors_for_the_store_only(client, shop, session) -> None:
    body = json.dumps({"key": shop.public_key, "batch": [track("v", "product_viewed", {"sku": "A"}, anonymous_id="anon")]})
    own = client.post("/api/v1/track", data=body, content_type="text/plain;charset=UTF-8", headers={"Origin": "https://www.shop.example"})
    assert own.status_code == 202 and own.get_json()["accepted"] == 1
    assert own.headers["Access-Control-Allow-Origin"] == "https://www.shop.example"
    assert "Origin" in own.headers["Vary"] and "Access-Control-Allow-Credentials" not in own.headers
    other = client.post("/api/v1/track", data=body, content_type="text/plain", headers={"Origin": "https://evilshop.example"})
    assert other.status_code == 202 and "Access-Control-Allow-Origin" not in other.headers
    local = client.post("/api/v1/track", data=body, content_type="text/plain", headers={"Origin": "http://127.0.0.1:8000"})
    assert local.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"  # MAILER_ENV=test
    assert events_of(session, shop) == ["v"]


def test_track_preflight_answers_store_origins(client, shop) -> None:
    headers = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    response = client.options("/api/v1/track", headers=headers)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    stranger = client.options("/api/v1/track", headers=dict(headers, Origin="https://elsewhere.example"))
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_public_api_refuses_far_timestamps_and_foreign_links_per_event(client, shop, session) -> None:
    now = utcnow()
    batch = [
        identify("old", "a@b.co", anonymous_id="anon", timestamp=(now - timedelta(days=2)).isoformat()),
        track("phish", "cart_updated", cart("c", ("A", "1", 1), restore_url="https://evil.example/cart"), anonymous_id="anon"),
        track("fine", "cart_updated", cart("c", ("A", "1", 1), restore_url="https://shop.example/cart"), anonymous_id="anon",
              timestamp=(now - timedelta(hours=1)).isoformat()),
    ]
    response = client.post("/api/v1/track", json={"key": shop.public_key, "batch": batch})
    assert response.get_json() == {"accepted": 1, "duplicates": 0, "rejected": [
        {"index": 0, "error": "timestamp: is more than 24 hours from the present (send history through the server API)"},
        {"index": 1, "error": "properties.restore_url: must be on the store's domain (shop.example)"},
    ]}
    assert events_of(session, shop) == ["fine"]
    history = {"batch": [identify("old", "a@b.co", timestamp=(now - timedelta(days=400)).isoformat())]}
    assert client.post("/api/v1/events", json=history, headers=shop.bearer).get_json()["accepted"] == 1
