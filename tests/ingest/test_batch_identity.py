"""A request's batch applied at once (`_ingest_together`) ends as one-by-one application leaves it.

Each case runs the same events in three stores set up alike: as one request's batch, one event at
a time through the careful path (`apply_event`, or `record_views` for a view without an email),
and each event as a request of its own (the single-event path). The end state, by natural keys
(events' and carts' owners by email, contacts, browsers, orders, what was accepted), must be the
same; the cases also spell out the owners.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.ingest.apply import ingest_batch
from mailer.models import AnonymousId, Cart, Contact, Event, Order, Store
from tests.ingest.helpers import cart, identify, iso, track
from tests.support.factories import T0, make_contact, make_store

NOW = T0 + timedelta(days=1)
Setup = Callable[[Session, Store], None]


def view(event_id: str, browser: str, **fields: Any) -> dict[str, Any]:
    return track(event_id, "product_viewed", {"sku": "MUG"}, anonymous_id=browser, **fields)


def cart_update(event_id: str, browser: str, cart_id: str, **fields: Any) -> dict[str, Any]:
    return track(event_id, "cart_updated", cart(cart_id, ("MUG", "12.00", 1)), anonymous_id=browser, **fields)


def owned_browser(browser: str, email: str) -> Setup:
    """A browser that identified as `email` in an earlier request."""
    def setup(session: Session, store: Store) -> None:
        contact = make_contact(session, store, email=email)
        session.add(AnonymousId(store_id=store.id, anonymous_id=browser, contact_id=contact.id, created_at=T0))
    return setup


def earlier(*events: dict[str, Any]) -> Setup:
    """Events of an earlier request, applied one by one."""
    def setup(session: Session, store: Store) -> None:
        for event in events:
            ingest_batch(session, store, [event], now=NOW, public=False)
    return setup


def end_state(session: Session, store_id: int) -> dict[str, Any]:
    """What the events decide, by natural keys (the stores' ids differ): events' and carts' owners, contacts, browsers, orders."""
    def email_of(column: Any) -> Any:
        return select(Contact.email).where(Contact.id == column).scalar_subquery().label("email")

    def rows(key: Any, *columns: Any, where: Any) -> dict[Any, Any]:
        """key → its one column's value, or a dict of its columns by name."""
        found = session.execute(select(key, *columns).where(where)).all()
        if len(columns) == 1:
            return {row[0]: row[1] for row in found}
        return {row[0]: dict(zip(row._fields[1:], row[1:], strict=True)) for row in found}

    order_id = select(Order.external_id).where(Order.id == Cart.converted_order_id).scalar_subquery().label("order")
    cart_id = select(Cart.external_id).where(Cart.id == Order.cart_id).scalar_subquery().label("cart")
    return {
        "events": rows(Event.event_id, email_of(Event.contact_id), where=Event.store_id == store_id),
        "carts": rows(Cart.external_id, email_of(Cart.contact_id), where=Cart.store_id == store_id),
        "cart rows": rows(Cart.external_id, Cart.anonymous_id, Cart.status, Cart.value, Cart.last_activity_at,
                          Cart.checkout_started_at, order_id, where=Cart.store_id == store_id),
        "contacts": rows(Contact.email, Contact.first_name, Contact.last_name, Contact.timezone, Contact.consent,
                         Contact.consent_source, Contact.consent_at, Contact.orders_count, Contact.total_spent,
                         Contact.first_order_at, Contact.last_order_at, Contact.created_at, Contact.updated_at,
                         where=Contact.store_id == store_id),
        "browsers": rows(AnonymousId.anonymous_id, email_of(AnonymousId.contact_id), where=AnonymousId.store_id == store_id),
        "orders": rows(Order.external_id, email_of(Order.contact_id), cart_id, Order.total, where=Order.store_id == store_id),
    }


def all_ways(database: Database, events: list[dict[str, Any]], *setups: Setup) -> dict[str, Any]:
    """The end state after the events as one request's batch, one by one, and one request each; asserts they agree."""
    ends = []
    for way in ("one batch", "one by one", "one request each"):
        with database.transaction() as session:
            store = make_store(session)
            for setup in setups:
                setup(session, store)
        counts = [0, 0]
        for batch in [events] if way == "one batch" else [[event] for event in events]:
            with database.transaction() as session:
                result = ingest_batch(session, store, batch, now=NOW, public=False, own_transaction=way != "one by one")
            assert result.rejected == []
            counts = [counts[0] + result.accepted, counts[1] + result.duplicates]
        with database.transaction() as session:
            ends.append({**end_state(session, store.id), "accepted, duplicates": counts})
    assert ends[0] == ends[1] == ends[2]
    return ends[0]


def both_ways(database: Database, events: list[dict[str, Any]], *setups: Setup) -> tuple[Any, Any]:
    """The events' and carts' owners (by email) after the events applied every way; asserts every way agrees (all_ways)."""
    state = all_ways(database, events, *setups)
    return state["events"], state["carts"]


def test_identify_first_then_views_and_carts(database) -> None:
    events, carts = both_ways(database, [
        identify("i", "ann@example.com", anonymous_id="b"),
        cart_update("c1", "b", "cart-1"), cart_update("c2", "b", "cart-1"),
        view("v1", "b"), view("v2", "b"),
    ])
    assert set(events.values()) == {"ann@example.com"} and carts == {"cart-1": "ann@example.com"}


def test_views_then_identify_then_views(database) -> None:
    events, carts = both_ways(database, [
        view("v1", "b"), cart_update("c1", "b", "cart-1"),
        identify("i", "ann@example.com", anonymous_id="b"),
        view("v2", "b"), cart_update("c2", "b", "cart-2"),
        view("x", "stranger"),
    ])
    ann = "ann@example.com"
    assert events == {"v1": ann, "c1": ann, "i": ann, "v2": ann, "c2": ann, "x": None}
    assert carts == {"cart-1": ann, "cart-2": ann}


def test_two_people_identify_on_one_browser_in_one_batch(database) -> None:
    ann, bo = "ann@example.com", "bo@example.com"
    events, carts = both_ways(database, [
        view("v1", "b"),
        identify("i-ann", ann, anonymous_id="b"),
        view("v2", "b"), cart_update("c-ann", "b", "cart-ann"),
        identify("i-bo", bo, anonymous_id="b"),
        view("v3", "b"), cart_update("c-bo", "b", "cart-bo"),
    ])
    assert events == {"v1": ann, "i-ann": ann, "v2": ann, "c-ann": ann, "i-bo": bo, "v3": bo, "c-bo": bo}
    assert carts == {"cart-ann": ann, "cart-bo": bo}


def test_a_browser_passed_back_and_forth_and_an_email_on_a_cart_update(database) -> None:
    ann, bo = "ann@example.com", "bo@example.com"
    events, _ = both_ways(database, [
        identify("i-ann", ann, anonymous_id="b"), view("v1", "b"),
        cart_update("c-bo", "b", "cart-bo", email=bo), view("v2", "b"),  # an email on any event identifies
        identify("i-ann-2", ann, anonymous_id="b"), view("v3", "b"),
        identify("i-bo-2", bo, anonymous_id="b"), identify("no-browser", ann), view("v4", "b"),
    ])
    assert events == {"i-ann": ann, "v1": ann, "c-bo": bo, "v2": bo, "i-ann-2": ann, "v3": ann, "i-bo-2": bo,
                      "no-browser": ann, "v4": bo}


def test_a_browser_identified_before_by_the_same_person(database) -> None:
    ann = "ann@example.com"
    # An anonymous row of the browser left without a contact stays so: identifying again moves nothing.
    stray = earlier(view("stray", "b"))
    events, carts = both_ways(database, [
        view("v1", "b"), identify("i", ann, anonymous_id="b", traits={"first_name": "Ann"}),
        view("v2", "b"), cart_update("c1", "b", "cart-1"),
    ], stray, owned_browser("b", ann))
    assert events == {"stray": None, "v1": ann, "i": ann, "v2": ann, "c1": ann} and carts == {"cart-1": ann}


def test_a_known_visitor_whose_events_all_carry_the_email(database) -> None:
    # The snippet adds the email it knows to every event: nothing in the batch is anonymous.
    ann = "ann@example.com"
    events, carts = both_ways(database, [
        identify("i", ann, anonymous_id="b"), view("v1", "b", email=ann), cart_update("c1", "b", "cart-1", email=ann),
        identify("no-browser", ann),
    ], earlier(view("stray", "b")), owned_browser("b", ann))
    assert events == {"stray": None, "i": ann, "v1": ann, "c1": ann, "no-browser": ann} and carts == {"cart-1": ann}


def test_a_browser_identified_before_by_someone_else(database) -> None:
    old, new = "old@example.com", "new@example.com"
    events, carts = both_ways(database, [
        view("v1", "b"), cart_update("c1", "b", "cart-1"),
        identify("i", new, anonymous_id="b"),
        view("v2", "b"), cart_update("c2", "b", "cart-2"),
    ], earlier(identify("i-old", old, anonymous_id="b"), view("v0", "b")))
    assert events == {"i-old": old, "v0": old, "v1": old, "c1": old, "i": new, "v2": new, "c2": new}
    assert carts == {"cart-1": old, "cart-2": new}


def test_replayed_events_change_nothing_but_an_identify_still_moves_what_came_before(database) -> None:
    ann = "ann@example.com"
    first = [view("v1", "b"), cart_update("c1", "b", "cart-1")]
    events, carts = both_ways(database, [
        *first,  # replays: duplicates, still anonymous until the identify below
        identify("i", ann, anonymous_id="b"), view("v2", "b"),
        view("v2", "b"), identify("i", ann, anonymous_id="b"),  # the same ids twice in one batch
    ], earlier(*first))
    assert events == {"v1": ann, "c1": ann, "i": ann, "v2": ann} and carts == {"cart-1": ann}


def test_a_replayed_identify_in_a_batch_still_gives_the_later_views_their_contact(database) -> None:
    ann = "ann@example.com"
    events, _ = both_ways(database, [identify("i", ann, anonymous_id="b"), view("v1", "b"), cart_update("c1", "b", "cart-1")],
                          earlier(identify("i", ann, anonymous_id="b")))
    assert events == {"i": ann, "v1": ann, "c1": ann}


def test_an_id_sent_twice_with_different_browsers_counts_as_its_first_copy(database) -> None:
    old, new = "old@example.com", "new@example.com"
    events, _ = both_ways(database, [identify("i", new, anonymous_id="b"), view("v", "b"), view("v", "c")],
                          owned_browser("b", old), owned_browser("c", new))
    assert events == {"i": new, "v": new}


# --- the snippet's real pattern: once a visitor identified, every event carries their email ---------------


def snippet_events(prefix: str, email: str, browser: str = "b", **traits: Any) -> list[dict[str, Any]]:
    """What the snippet sends after an identify: 2 updates of the same cart and 7 views, each with the email."""
    return [
        cart_update(f"{prefix}c1", browser, "cart-1", email=email),
        track(f"{prefix}c2", "cart_updated", cart("cart-1", ("MUG", "12.00", 2)), anonymous_id=browser, email=email),
        *(view(f"{prefix}v{n}", browser, email=email) for n in range(7)),
    ]


def test_a_new_visitor_identifies_then_sends_the_email_with_every_event(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [
        identify("i", ann, anonymous_id="b", traits={"first_name": "Ann"}), *snippet_events("", ann),
    ], earlier(view("before", "b")))
    assert set(state["events"].values()) == {ann} and state["carts"] == {"cart-1": ann}
    assert state["browsers"] == {"b": ann} and state["contacts"].keys() == {ann}
    assert state["contacts"][ann]["first_name"] == "Ann" and state["accepted, duplicates"] == [10, 0]


def test_a_returning_visitor_whose_browser_is_theirs_sends_the_email_with_every_event(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [
        identify("i", ann, anonymous_id="b", traits={"first_name": "Ann", "consent": "denied"}), *snippet_events("", ann),
    ], earlier(view("stray", "b")), owned_browser("b", ann))
    # The stray view came before the browser was theirs and stays anonymous, as identifying again leaves it.
    assert state["events"] == {"stray": None, "i": ann, **{f"c{n}": ann for n in (1, 2)}, **{f"v{n}": ann for n in range(7)}}
    assert state["carts"] == {"cart-1": ann} and state["browsers"] == {"b": ann} and state["contacts"].keys() == {ann}
    contact = state["contacts"][ann]
    consent = (contact["consent"], contact["consent_source"], contact["consent_at"])
    assert contact["first_name"] == "Ann" and consent == ("denied", "api", NOW)
    assert (contact["created_at"], contact["updated_at"]) == (T0, NOW)
    assert state["accepted, duplicates"] == [10, 0]


def test_an_identify_without_traits_by_the_browsers_owner_still_touches_the_contact(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [identify("i", ann, anonymous_id="b"), view("v", "b", email=ann)], owned_browser("b", ann))
    contact = state["contacts"][ann]
    assert (contact["first_name"], contact["created_at"], contact["updated_at"]) == ("Ada", T0, NOW)


def test_a_shared_browser_whose_owner_is_someone_else_follows_the_email(database) -> None:
    ann, bo = "ann@example.com", "bo@example.com"
    state = all_ways(database, [
        view("v1", "b", email=bo), cart_update("c1", "b", "cart-bo", email=bo), view("v2", "b"),
        view("v3", "b", email=ann), view("v4", "b"),  # passed back to ann for a moment
        identify("i", bo, anonymous_id="b"), *snippet_events("bo-", bo)[:3],
    ], owned_browser("b", ann), earlier(view("before", "b")))
    assert state["events"] == {"before": ann, "v1": bo, "c1": bo, "v2": bo, "v3": ann, "v4": ann, "i": bo,
                               "bo-c1": bo, "bo-c2": bo, "bo-v0": bo}
    assert state["carts"] == {"cart-1": bo, "cart-bo": bo} and state["browsers"] == {"b": bo}
    assert state["contacts"].keys() == {ann, bo}


def test_a_new_browser_passed_to_another_person_in_one_batch_with_the_email_on_every_event(database) -> None:
    # Ann's identify gives her every anonymous row of the browser, bo's later ones too (the batch
    # claimed them all before applying any): bo's must still end with bo, as one by one.
    ann, bo = "ann@example.com", "bo@example.com"
    state = all_ways(database, [
        identify("i-ann", ann, anonymous_id="b"), *snippet_events("ann-", ann)[:3],
        identify("i-bo", bo, anonymous_id="b"), *snippet_events("bo-", bo)[:3], view("after", "b"),
    ])
    assert state["events"] == {"i-ann": ann, "ann-c1": ann, "ann-c2": ann, "ann-v0": ann,
                               "i-bo": bo, "bo-c1": bo, "bo-c2": bo, "bo-v0": bo, "after": bo}
    assert state["carts"] == {"cart-1": ann} and state["browsers"] == {"b": bo}


def test_an_email_differing_from_the_owners_only_by_case_and_spaces_is_the_owners(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [
        identify("i", " Ann@Example.COM ", anonymous_id="b"), *snippet_events("", "ANN@example.com "),
    ], owned_browser("b", ann))
    assert set(state["events"].values()) == {ann} and state["contacts"].keys() == {ann}


def test_an_owner_stored_with_an_email_not_normalized_is_not_the_events(database) -> None:
    # A contact stored as "Ann@Example.com" (by hand, or an old import) is not found by the normalized
    # email: the event identifies a new contact, and the browser follows it.
    stored, ann = "Ann@Example.com", "ann@example.com"
    state = all_ways(database, snippet_events("", ann)[:3], owned_browser("b", stored))
    assert set(state["events"].values()) == {ann} and state["carts"] == {"cart-1": ann}
    assert state["contacts"].keys() == {stored, ann} and state["browsers"] == {"b": ann}


def test_an_order_with_the_owners_email_on_their_browser(database) -> None:
    ann = "ann@example.com"
    order = {"order_id": "o-1", "total": "24.00", "currency": "USD", "cart_id": "cart-1"}
    state = all_ways(database, [
        *snippet_events("", ann)[:3], track("co", "checkout_started", {"cart_id": "cart-1"}, anonymous_id="b", email=ann),
        track("o", "order_placed", order, anonymous_id="b", email=ann), view("after", "b", email=ann),
    ], owned_browser("b", ann))
    assert set(state["events"].values()) == {ann}
    assert state["orders"] == {"o-1": {"email": ann, "cart": "cart-1", "total": Decimal("24.00")}}
    assert (state["cart rows"]["cart-1"]["status"], state["cart rows"]["cart-1"]["order"]) == ("converted", "o-1")
    assert (state["contacts"][ann]["orders_count"], state["contacts"][ann]["total_spent"]) == (1, Decimal("24.00"))


def test_replays_of_events_with_the_email_change_nothing(database) -> None:
    ann, bo = "ann@example.com", "bo@example.com"
    before = [view("v1", "b", email=ann), cart_update("c1", "b", "cart-1", email=ann), identify("i-bo", bo, anonymous_id="b")]
    state = all_ways(database, [
        *before,  # replays: duplicates, the browser stays bo's
        view("v2", "b", email=bo), view("v3", "b", email=ann), view("v3", "b", email=ann),  # the same id twice
        view("v2", "b", email=ann), cart_update("c1", "b", "cart-1", email=bo), view("v4", "b"),
    ], owned_browser("b", ann), earlier(*before))
    assert state["events"] == {"v1": ann, "c1": ann, "i-bo": bo, "v2": bo, "v3": ann, "v4": ann}
    assert state["carts"] == {"cart-1": ann} and state["browsers"] == {"b": ann}
    assert state["accepted, duplicates"] == [3, 6]


# --- what the ORM changes (consent, checkout, new carts) reaches the later events of the same batch ---------


def checkout(event_id: str, browser: str, cart_id: str, **fields: Any) -> dict[str, Any]:
    return track(event_id, "checkout_started", {"cart_id": cart_id}, anonymous_id=browser, **fields)


def test_a_consent_given_in_a_batch_survives_a_later_identify(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [
        identify("i1", ann, anonymous_id="b", traits={"consent": "denied"}),
        identify("i2", ann, anonymous_id="b", traits={"last_name": "Lee"}),
    ], owned_browser("b", ann))
    contact = state["contacts"][ann]
    assert (contact["consent"], contact["consent_source"], contact["last_name"]) == ("denied", "api", "Lee")


def test_a_checkout_in_a_batch_survives_a_later_update_of_its_cart(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [
        cart_update("c1", "b", "cart-1", email=ann, timestamp=iso(NOW - timedelta(minutes=3))),
        checkout("co", "b", "cart-1", email=ann, timestamp=iso(NOW - timedelta(minutes=2))),
        track("c2", "cart_updated", cart("cart-1", ("MUG", "12.00", 3)), anonymous_id="b", email=ann,
              timestamp=iso(NOW - timedelta(minutes=1))),
    ], owned_browser("b", ann))
    assert state["cart rows"]["cart-1"]["checkout_started_at"] == NOW - timedelta(minutes=2)
    assert state["cart rows"]["cart-1"]["value"] == Decimal("36.00")


def test_a_cart_a_checkout_started_in_a_batch_is_the_contacts_who_identifies_after(database) -> None:
    ann = "ann@example.com"
    state = all_ways(database, [checkout("co", "b", "cart-1"), identify("i", ann, anonymous_id="b")])
    assert state["carts"] == {"cart-1": ann}
