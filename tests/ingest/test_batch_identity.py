"""A request's batch applied at once (`_ingest_together`) ends with the owners one-by-one application gives.

Each case runs the same events in two stores set up alike: as one request's batch, and one event
at a time through `apply_event` (the careful path with a single event). The events' and carts'
owners, by email, must be the same; a few cases also spell them out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.ingest.apply import ingest_batch
from mailer.models import AnonymousId, Cart, Contact, Event, Store
from tests.ingest.helpers import cart, identify, track
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


def owners(session: Session, store_id: int) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """event id → its contact's email, and cart id → its contact's email."""
    email = select(Contact.email).where(Contact.id == Event.contact_id).scalar_subquery()
    events = dict(session.execute(select(Event.event_id, email).where(Event.store_id == store_id)).all())
    cart_email = select(Contact.email).where(Contact.id == Cart.contact_id).scalar_subquery()
    carts = dict(session.execute(select(Cart.external_id, cart_email).where(Cart.store_id == store_id)).all())
    return events, carts


def both_ways(database: Database, events: list[dict[str, Any]], *setups: Setup) -> tuple[Any, Any]:
    """The owners after the events as one request's batch, and after them one by one; asserts they agree."""
    ends = []
    for together in (True, False):
        with database.transaction() as session:
            store = make_store(session)
            for setup in setups:
                setup(session, store)
        with database.transaction() as session:
            if together:
                result = ingest_batch(session, store, events, now=NOW, public=False, own_transaction=True)
                assert result.rejected == []
            else:
                for event in events:
                    assert ingest_batch(session, store, [event], now=NOW, public=False).rejected == []
        with database.transaction() as session:
            ends.append(owners(session, store.id))
    assert ends[0] == ends[1]
    return ends[0]


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
