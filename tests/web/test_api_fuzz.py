"""Property: arbitrary JSON thrown at `POST /api/v1/events` never gets a 500 and never half-writes an event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, target
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mailer import create_app
from mailer.ingest.schema import TRACK_NAMES
from mailer.models import AnonymousId, Cart, CartItem, Contact, Event, Order
from tests.ingest.helpers import make_shop

TABLES = (Event, Contact, Cart, CartItem, Order, AnonymousId)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ids = st.text(max_size=12) | st.sampled_from(["e1", "e2", " e1 ", "order-1", "cart-1"])
money = st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str) | st.integers(-5, 10**13) | json_values
hostile_items = st.lists(
    st.fixed_dictionaries({}, optional={
        "sku": ids, "name": st.text(max_size=30), "price": money, "quantity": st.integers(-1, 10_001) | json_values,
        "url": st.sampled_from(["https://shop.example/p", "javascript:alert(1)", "//x", "http://[::1"]) | json_values,
        "image_url": st.text(max_size=20),
    }),
    max_size=3,
)
hostile_events = st.fixed_dictionaries({}, optional={
    "id": ids | json_values,
    "type": st.sampled_from(["identify", "track"]) | json_values,
    "event": st.sampled_from(TRACK_NAMES) | json_values,
    "email": st.sampled_from(["ann@example.com", "BOB@example.com", "no", "a\x00@b.co"]) | json_values,
    "anonymous_id": ids | json_values,
    "properties": st.dictionaries(st.sampled_from(["cart_id", "order_id", "items", "total", "x"]), json_values) | json_values,
    "traits": json_values,
    "timestamp": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | json_values,
    "extra": json_values,
})

# Plausible events: mostly valid, so the property also covers batches that really write.
good_ids = st.text(alphabet="abc123", min_size=1, max_size=4)
event_ids = good_ids | st.uuids().map(str)  # mostly fresh, sometimes replayed
good_money = st.decimals(min_value=0, max_value=10**6, places=2).map(str) | st.integers(0, 1000)
items = st.lists(
    st.fixed_dictionaries({"sku": good_ids, "price": good_money}, optional={
        "name": st.text(max_size=30), "quantity": st.integers(1, 5) | st.integers(-2, 0),
        "url": st.sampled_from(["https://shop.example/p", "javascript:alert(1)"]),
    }),
    max_size=3,
)
emails = st.sampled_from(["ann@example.com", "Bob@Example.com", "carl@example.com"])
anonymous = st.sampled_from(["anon-1", "anon-2"])
who = st.one_of(
    st.fixed_dictionaries({"email": emails}), st.fixed_dictionaries({"anonymous_id": anonymous}),
    st.fixed_dictionaries({"email": emails, "anonymous_id": anonymous}),
).flatmap(lambda ident: st.fixed_dictionaries({k: st.just(v) for k, v in ident.items()}, optional={
    "timestamp": st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2025, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
}))
track_properties = st.one_of(
    st.tuples(st.just("product_viewed"), st.fixed_dictionaries({}, optional={"sku": good_ids, "price": good_money})),
    st.tuples(st.just("cart_updated"), st.fixed_dictionaries({"cart_id": good_ids, "items": items}, optional={
        "currency": st.sampled_from(["USD", "EUR"]), "restore_url": st.sampled_from(["https://shop.example/c", "data:,x"]),
    })),
    st.tuples(st.just("checkout_started"), st.fixed_dictionaries({"cart_id": good_ids})),
    st.tuples(st.just("order_placed"), st.fixed_dictionaries(
        {"order_id": good_ids, "total": good_money, "currency": st.just("USD")},
        optional={"cart_id": good_ids, "coupon": st.sampled_from(["NOPE-1", "SHOP-AAAA"]), "items": items},
    )),
)
plausible_events = st.one_of(
    st.builds(lambda i, w, t: {"id": i, "type": "identify", **w, "traits": t}, event_ids, who,
              st.fixed_dictionaries({}, optional={"first_name": st.text(max_size=10), "consent": st.sampled_from(["granted", "denied"])})),
    st.builds(lambda i, w, np: {"id": i, "type": "track", **w, "event": np[0], "properties": np[1]}, event_ids, who, track_properties),
)
events = plausible_events | hostile_events | json_values
bodies = st.fixed_dictionaries({"batch": st.lists(events, max_size=5)}) | json_values


@pytest.fixture
def shop(database):
    return make_shop(database)  # one store for all examples: they share the rolled-back database


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


def _counts(session, store_id: int) -> dict[str, int]:
    counts = {}
    for model in TABLES:
        query = select(func.count()).select_from(model)
        if hasattr(model, "store_id"):
            query = query.where(model.store_id == store_id)
        counts[model.__name__] = session.scalar(query)
    return counts


@hypothesis_settings(
    max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies, raw=st.none() | st.binary(max_size=40))
def test_arbitrary_bodies_never_500_and_never_half_write(client, shop, session, body, raw) -> None:
    before = _counts(session, shop.id)
    existing = set(session.scalars(select(Event.event_id).where(Event.store_id == shop.id)))
    data = raw if raw is not None else json.dumps(body).encode()
    response = client.post("/api/v1/events", data=data, headers=shop.bearer, content_type="application/json")
    assert response.status_code in (202, 400, 413), response.get_data(as_text=True)
    after = _counts(session, shop.id)
    if response.status_code != 202:
        assert after == before
        return
    answer = response.get_json()
    target(float(answer["accepted"]), label="accepted events")  # steer towards batches that get stored
    assert after["Event"] - before["Event"] == answer["accepted"]
    if answer["accepted"] == 0:
        assert after == before
    batch = body["batch"]
    for refused in answer["rejected"]:
        event = batch[refused["index"]]
        event_id = event.get("id") if isinstance(event, dict) else None
        # (an id with control characters is refused and could not even be looked up on PostgreSQL)
        if isinstance(event_id, str) and event_id.isprintable() and event_id.strip() not in existing:
            stored = select(Event.id).where(Event.store_id == shop.id, Event.event_id == event_id.strip())
            accepted_twin = any(
                isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"].strip() == event_id.strip()
                and i not in {r["index"] for r in answer["rejected"]}
                for i, e in enumerate(batch)
            )
            assert accepted_twin or session.scalar(stored) is None

