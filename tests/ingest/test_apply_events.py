"""Applying events: idempotency, identity merge, carts out of order, orders, coupons, consent."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from mailer.ingest import apply as apply_module
from mailer.ingest.apply import ingest_batch
from mailer.models import AnonymousId, Cart, CartItem, Contact, Event, Order
from tests.ingest.helpers import cart, identify, iso, make_coupon, statements_run, track
from tests.support.factories import T0, make_contact, make_store

NOW = T0 + timedelta(days=1)


def ingest(session, store, *events, now=NOW, public=False):
    return ingest_batch(session, store, list(events), now=now, public=public)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_identify_merges_anonymous_cart_and_views_into_one_contact(session) -> None:
    store = make_store(session)
    result = ingest(
        session, store,
        track("v1", "product_viewed", {"sku": "MUG", "name": "Blue mug"}, anonymous_id="anon-1", timestamp=iso(T0)),
        track("c1", "cart_updated", cart("cart-1", ("MUG", "12.00", 1)), anonymous_id="anon-1", timestamp=iso(T0)),
    )
    assert (result.accepted, result.rejected) == (2, [])
    anonymous_cart = session.scalar(select(Cart).where(Cart.external_id == "cart-1"))
    assert anonymous_cart.contact_id is None and anonymous_cart.anonymous_id == "anon-1"

    ingest(session, store, identify("i1", "Ann@Example.com", anonymous_id="anon-1", traits={"first_name": "Ann"}))
    ingest(session, store, identify("i2", "ann@example.com ", anonymous_id="anon-1"))
    contacts = session.scalars(select(Contact).where(Contact.store_id == store.id)).all()
    assert [(c.email, c.first_name) for c in contacts] == [("ann@example.com", "Ann")]
    contact = contacts[0]
    session.refresh(anonymous_cart)
    assert anonymous_cart.contact_id == contact.id
    assert count(session, Event, Event.store_id == store.id, Event.contact_id == contact.id) == 4
    assert count(session, AnonymousId, AnonymousId.contact_id == contact.id) == 1

    # Later anonymous events from that browser belong to the contact at once.
    ingest(session, store, track("v2", "product_viewed", {"sku": "CUP"}, anonymous_id="anon-1"))
    assert session.scalar(select(Event.contact_id).where(Event.event_id == "v2")) == contact.id


def test_out_of_order_cart_events_never_rewind_the_cart(session) -> None:
    store = make_store(session)
    t1, t2, t3 = T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    ingest(session, store, track("late", "cart_updated", cart("c", ("A", "5", 1), ("B", "7.5", 2)), email="a@b.co", timestamp=iso(t2)))
    ingest(session, store, track("early", "cart_updated", cart("c", ("A", "5", 1)), email="a@b.co", timestamp=iso(t1)))
    ingest(session, store, track("co", "checkout_started", {"cart_id": "c"}, email="a@b.co", timestamp=iso(t1)))
    shopping = session.scalar(select(Cart).where(Cart.store_id == store.id, Cart.external_id == "c"))
    assert [i.sku for i in shopping.items] == ["A", "B"] and shopping.value == Decimal("20.00")
    assert shopping.last_activity_at == t2 and shopping.checkout_started_at == t1 and shopping.status == "open"

    ingest(session, store, track("empty", "cart_updated", cart("c"), email="a@b.co", timestamp=iso(t3)))
    session.refresh(shopping)
    assert shopping.status == "emptied" and shopping.items == [] and shopping.last_activity_at == t3


def test_checkout_before_any_cart_update_still_takes_the_items(session) -> None:
    store = make_store(session)
    ingest(session, store, track("co", "checkout_started", {"cart_id": "c"}, email="a@b.co", timestamp=iso(T0 + timedelta(minutes=5))))
    ingest(session, store, track("cu", "cart_updated", cart("c", ("A", "5", 1)), email="a@b.co", timestamp=iso(T0)))
    shopping = session.scalar(select(Cart).where(Cart.store_id == store.id, Cart.external_id == "c"))
    assert [i.sku for i in shopping.items] == ["A"] and shopping.last_activity_at == T0 + timedelta(minutes=5)


def writes(statements: list[str]) -> list[tuple[str, list[str]]]:
    """The cart writes among `statements`: each one's verb and table, and the columns an UPDATE sets."""
    found = []
    for statement in statements:
        head = re.match(r"(UPDATE carts|DELETE FROM cart_items|INSERT INTO cart_items)\b", statement)
        if head:
            sets = statement.split(" WHERE")[0] if head[1] == "UPDATE carts" else ""
            found.append((head[1], re.findall(r"(\w+)=", sets)))
    return found


def test_a_cart_reported_again_as_it_is_is_not_written_again(session, connection) -> None:
    # The snippet sends the whole cart on every change: rewriting equal rows only leaves dead ones.
    store = make_store(session)
    properties = {"cart_id": "c", "currency": "USD", "value": "29.50", "restore_url": "https://shop.example/cart", "items": [
        {"sku": "A", "name": "Mug", "price": "5", "quantity": 1, "url": "https://shop.example/a", "image_url": "https://shop.example/a.jpg"},
        {"sku": "B", "name": "Tea", "price": "12.25", "quantity": 2},
    ]}
    ingest(session, store, track("c1", "cart_updated", properties, anonymous_id="anon", timestamp=iso(T0)))

    def lines():
        return session.execute(select(CartItem.id, CartItem.position, CartItem.sku, CartItem.price, CartItem.url)
                               .join(Cart, Cart.id == CartItem.cart_id).where(Cart.store_id == store.id)
                               .order_by(CartItem.position)).all()

    stored = lines()
    with statements_run(connection) as same:
        ingest(session, store, track("c2", "cart_updated", properties, anonymous_id="anon", timestamp=iso(T0)))
    with statements_run(connection) as later:
        ingest(session, store, track("c3", "cart_updated", properties, anonymous_id="anon", timestamp=iso(T0 + timedelta(minutes=1))))
    assert lines() == stored
    assert writes(same) == [] and writes(later) == [("UPDATE carts", ["last_activity_at"])]

    properties["items"][1]["quantity"] = 3
    with statements_run(connection) as changed:
        ingest(session, store, track("c4", "cart_updated", properties, anonymous_id="anon", timestamp=iso(T0 + timedelta(minutes=2))))
    assert writes(changed) == [("UPDATE carts", ["last_activity_at"]), ("DELETE FROM cart_items", []), ("INSERT INTO cart_items", [])]
    shopping = session.scalar(select(Cart).where(Cart.store_id == store.id))
    assert [(i.sku, i.quantity) for i in shopping.items] == [("A", 1), ("B", 3)]
    assert (shopping.value, shopping.last_activity_at) == (Decimal("29.50"), T0 + timedelta(minutes=2))


def test_order_converts_the_cart_updates_the_rollup_and_redeems_a_coupon_once(session, monkeypatch) -> None:
    store = make_store(session)
    buyer = make_contact(session, store)
    coupon = make_coupon(session, store, buyer, T0)
    seen: list[str] = []
    monkeypatch.setattr(apply_module, "ORDER_HOOKS", [lambda _s, order, _now: seen.append(order.external_id)])

    ingest(session, store, track("c", "cart_updated", cart("cart-9", ("A", "40", 1)), email=buyer.email, timestamp=iso(T0)))
    order_event = track("o1", "order_placed", {"order_id": "1001", "total": "40.00", "currency": "USD", "cart_id": "cart-9",
                                               "coupon": coupon.code.lower()}, email=buyer.email, timestamp=iso(NOW))
    second = track("o2", "order_placed", {"order_id": "1002", "total": "15", "currency": "USD", "coupon": coupon.code},
                   email=buyer.email, timestamp=iso(NOW))
    replay_under_new_id = dict(order_event, id="o1-again")
    result = ingest(session, store, order_event, second, replay_under_new_id)
    assert (result.accepted, result.duplicates, result.rejected) == (3, 0, [])

    first, later = session.scalars(select(Order).where(Order.store_id == store.id, Order.external_id.in_(["1001", "1002"])).order_by(Order.external_id))
    shopping = session.scalar(select(Cart).where(Cart.external_id == "cart-9"))
    assert shopping.status == "converted" and shopping.converted_order_id == first.id and first.cart_id == shopping.id
    session.refresh(coupon)
    assert coupon.order_id == first.id and coupon.redeemed_at == NOW and first.coupon_rejected is None
    assert later.coupon_rejected == "used"
    session.refresh(buyer)
    assert buyer.orders_count == 2 and buyer.total_spent == Decimal("55.00") and buyer.last_order_at == NOW
    assert seen == ["1001", "1002"]  # hooks run for new orders only


def test_unknown_coupon_is_flagged_not_refused(session) -> None:
    store = make_store(session)
    ingest(session, store, track("o", "order_placed", {"order_id": "1", "total": "5", "currency": "USD", "coupon": "NOPE-1"}, email="a@b.co"))
    assert session.scalar(select(Order.coupon_rejected).where(Order.store_id == store.id)) == "unknown"


def test_consent_follows_the_latest_decision_by_event_time(session) -> None:
    store = make_store(session)
    ingest(session, store, identify("g", "a@b.co", timestamp=iso(T0), traits={"consent": "granted", "consent_source": "checkout"}))
    ingest(session, store, identify("old", "a@b.co", timestamp=iso(T0 - timedelta(days=30)), traits={"consent": "denied"}))
    person = session.scalar(select(Contact).where(Contact.store_id == store.id))
    assert (person.consent, person.consent_source, person.consent_at) == ("granted", "checkout", T0)
    ingest(session, store, identify("d", "a@b.co", timestamp=iso(NOW), traits={"consent": "denied", "timezone": "Europe/Berlin"}))
    session.refresh(person)
    assert (person.consent, person.consent_source, person.consent_at, person.timezone) == ("denied", "api", NOW, "Europe/Berlin")


def test_replayed_event_id_is_a_duplicate_and_changes_nothing(session) -> None:
    store = make_store(session)
    first = track("same", "cart_updated", cart("c", ("A", "5", 1)), email="a@b.co", timestamp=iso(T0))
    replay = track("same", "cart_updated", cart("c", ("B", "9", 3)), email="a@b.co", timestamp=iso(NOW))
    result = ingest(session, store, first, replay)
    assert (result.accepted, result.duplicates) == (1, 1)
    assert [i.sku for i in session.scalar(select(Cart).where(Cart.store_id == store.id)).items] == ["A"]
    other = make_store(session)
    assert ingest(session, other, first).accepted == 1  # ids are per store


def test_a_refused_event_leaves_nothing_and_its_neighbours_stay(session) -> None:
    store = make_store(session)
    result = ingest(
        session, store,
        track("ok-1", "product_viewed", {"sku": "A"}, anonymous_id="anon"),
        # valid by schema, refused when applied: an anonymous browser that never identified cannot order
        track("bad", "order_placed", {"order_id": "9", "total": "5", "currency": "USD"}, anonymous_id="anon"),
        track("bad-2", "cart_updated", cart("c", ("A", "-1", 1)), anonymous_id="anon"),
        track("ok-2", "cart_updated", cart("c", ("A", "1", 1)), anonymous_id="anon"),
    )
    assert result.accepted == 2
    assert result.rejected == [
        {"index": 1, "error": "order_placed needs an email (or an anonymous_id identified before)"},
        {"index": 2, "error": "properties.items[0].price: must be a non-negative number"},
    ]
    assert sorted(session.scalars(select(Event.event_id).where(Event.store_id == store.id))) == ["ok-1", "ok-2"]
    assert count(session, Order, Order.store_id == store.id) == 0
    assert count(session, Cart, Cart.store_id == store.id) == 1


def test_views_in_a_batch_follow_the_browser_whatever_their_place_and_replays_are_duplicates(session) -> None:
    store = make_store(session)
    batch = [
        track("v-before", "product_viewed", {"sku": "A"}, anonymous_id="anon-9"),
        identify("id", "ann@example.com", anonymous_id="anon-9"),
        track("v-after", "product_viewed", {"sku": "B"}, anonymous_id="anon-9"),
        track("v-other", "product_viewed", {"sku": "C"}, anonymous_id="someone-else"),
        track("v-before", "product_viewed", {"sku": "A"}, anonymous_id="anon-9"),  # the same id twice in one batch
    ]
    result = ingest(session, store, *batch)
    assert (result.accepted, result.duplicates, result.rejected) == (4, 1, [])
    ann = session.scalar(select(Contact.id).where(Contact.store_id == store.id, Contact.email == "ann@example.com"))
    owners = dict(session.execute(select(Event.event_id, Event.contact_id).where(Event.store_id == store.id)).all())
    assert owners == {"v-before": ann, "id": ann, "v-after": ann, "v-other": None}
    again = ingest(session, store, *batch)
    assert (again.accepted, again.duplicates) == (0, 5)


def test_a_lone_event_refused_when_applied_rolls_back_its_own_transaction(database) -> None:
    # The API's single-event requests skip the savepoint: the request's transaction is the event's.
    with database.transaction() as session:
        store = make_store(session)
    with database.transaction() as session:
        result = ingest_batch(
            session, store,
            [track("bad", "order_placed", {"order_id": "9", "total": "5", "currency": "USD"}, anonymous_id="anon")],
            now=NOW, public=False, own_transaction=True,
        )
        assert result.rejected == [{"index": 0, "error": "order_placed needs an email (or an anonymous_id identified before)"}]
    with database.transaction() as session:
        assert count(session, Event, Event.store_id == store.id) == 0
        assert ingest_batch(session, store, [track("ok", "product_viewed", {"sku": "A"}, anonymous_id="anon")],
                            now=NOW, public=False, own_transaction=True).accepted == 1


def test_is_plain_view_only_for_product_views_without_an_email() -> None:
    from mailer.ingest.apply import is_plain_view
    from mailer.ingest.schema import validate_event

    def valid(raw):
        return validate_event(raw, now=NOW, public=False)

    assert is_plain_view(valid(track("v", "product_viewed", {"sku": "A"}, anonymous_id="a")))
    assert not is_plain_view(valid(track("v", "product_viewed", {"sku": "A"}, anonymous_id="a", email="a@b.example")))
    assert not is_plain_view(valid(track("c", "cart_updated", cart("c", ("A", "1", 1)), anonymous_id="a")))
    assert not is_plain_view(valid(identify("i", "a@b.example")))


def test_a_cart_loaded_before_an_update_in_the_same_session_shows_the_update(session) -> None:
    # Cart updates are Core statements; an ORM object the session already holds must not go stale.
    store = make_store(session)
    ingest(session, store, track("c1", "cart_updated", cart("cart-5", ("A", "1.00", 1)), anonymous_id="anon-5"))
    loaded = session.scalar(select(Cart).where(Cart.store_id == store.id, Cart.external_id == "cart-5"))
    assert [item.sku for item in loaded.items] == ["A"]
    ingest(session, store, track("c2", "cart_updated", cart("cart-5", ("B", "2.00", 3)), anonymous_id="anon-5"))
    ingest(session, store, identify("i1", "bo@example.com", anonymous_id="anon-5"))
    assert [(item.sku, item.quantity) for item in loaded.items] == [("B", 3)]
    bo = session.scalar(select(Contact).where(Contact.store_id == store.id, Contact.email == "bo@example.com"))
    assert loaded.contact_id == bo.id
    ingest(session, store, identify("i2", "bo@example.com", traits={"first_name": "Bo"}))
    assert bo.first_name == "Bo"


def _own(database, store, *events):
    with database.transaction() as session:
        return ingest_batch(session, store, list(events), now=NOW, public=False, own_transaction=True)


def test_a_requests_batch_applied_at_once_ends_as_one_by_one_would(database) -> None:
    with database.transaction() as session:
        store = make_store(session)
        old = make_contact(session, store, email="old@example.com")
        session.add(AnonymousId(store_id=store.id, anonymous_id="shared", contact_id=old.id, created_at=NOW))
    batch = [
        track("v1", "product_viewed", {"sku": "A"}, anonymous_id="shared"),  # before the switch: still old's
        track("c1", "cart_updated", cart("cart-s", ("A", "1.00", 1)), anonymous_id="shared"),
        identify("i1", "new@example.com", anonymous_id="shared", traits={"first_name": "Nia"}),
        track("v2", "product_viewed", {"sku": "B"}, anonymous_id="shared"),
        track("c2", "cart_updated", cart("cart-n", ("B", "2.00", 1)), anonymous_id="shared"),
        track("v1", "product_viewed", {"sku": "A"}, anonymous_id="shared"),  # the same id again
        track("x", "product_viewed", {"sku": "A"}, anonymous_id="stranger"),
    ]
    result = _own(database, store, *batch)
    assert (result.accepted, result.duplicates, result.rejected) == (6, 1, [])
    with database.transaction() as session:
        new = session.scalar(select(Contact).where(Contact.store_id == store.id, Contact.email == "new@example.com"))
        assert new.first_name == "Nia"
        owners = dict(session.execute(select(Event.event_id, Event.contact_id).where(Event.store_id == store.id)).all())
        assert owners == {"v1": old.id, "c1": old.id, "i1": new.id, "v2": new.id, "c2": new.id, "x": None}
        carts = dict(session.execute(select(Cart.external_id, Cart.contact_id).where(Cart.store_id == store.id)).all())
        assert carts == {"cart-s": old.id, "cart-n": new.id}
    assert (_own(database, store, *batch).duplicates, _own(database, store, *batch).accepted) == (7, 0)


def test_a_refused_event_in_a_requests_batch_sends_it_one_by_one_and_keeps_the_neighbours(database) -> None:
    with database.transaction() as session:
        store = make_store(session)
    result = _own(
        database, store,
        track("ok-1", "product_viewed", {"sku": "A"}, anonymous_id="anon"),
        track("bad", "order_placed", {"order_id": "9", "total": "5", "currency": "USD"}, anonymous_id="anon"),
        track("ok-2", "cart_updated", cart("c", ("A", "1", 1)), anonymous_id="anon"),
    )
    assert result.accepted == 2
    assert result.rejected == [{"index": 1, "error": "order_placed needs an email (or an anonymous_id identified before)"}]
    with database.transaction() as session:
        assert sorted(session.scalars(select(Event.event_id).where(Event.store_id == store.id))) == ["ok-1", "ok-2"]
        assert count(session, Cart, Cart.store_id == store.id) == 1
