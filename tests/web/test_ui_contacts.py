"""Contacts: search, the life cycle page (visitor strings escaped), unsubscribe, and erasure after confirmation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from mailer import create_app
from mailer.clock import utcnow
from mailer.models import Contact, Message, Store, Suppression
from mailer.models.suppression import email_hash
from mailer.stores import create_user
from mailer.web.ui.contact_history import lifecycle_moments
from tests.browser.dashboard_fixtures import (
    HOSTILE_NAME,
    HOSTILE_URL,
    PASSWORD,
    logged_in,
    seed_hostile,
)
from tests.support.factories import T0, make_contact, make_order, make_store
from tests.support.scenarios import plan_winback


@pytest.fixture
def board(session, database, settings) -> tuple[Flask, Store]:
    """A store (a month old) with a marketer's login, and the app."""
    store = make_store(session, now=utcnow() - timedelta(days=30))
    create_user(session, store_id=store.id, email="marketer@shop.example", password=PASSWORD, role="marketer", now=T0)
    session.commit()
    return create_app(settings, database), store


def test_search_finds_contacts_by_part_of_the_email_or_the_name(board, session) -> None:
    app, store = board
    make_contact(session, store, email="grace.hopper@navy.example", first_name="Grace", last_name="Hopper")
    make_contact(session, store, email="ada@engine.example", first_name="Ada", last_name="Lovelace")
    make_contact(session, store, email="percent_100@odd.example", first_name="Per", last_name="Cent")
    session.commit()
    client, _token = logged_in(app, "marketer@shop.example")

    def found(query: str) -> set[str]:
        page = client.get("/contacts", query_string={"q": query}).get_data(as_text=True)
        return {email for email in ("grace.hopper@navy.example", "ada@engine.example", "percent_100@odd.example") if email in page}

    assert found("NAVY") == {"grace.hopper@navy.example"}
    assert found("lovelace") == {"ada@engine.example"}
    assert found("grace hopper") == {"grace.hopper@navy.example"}
    assert found("t_1") == {"percent_100@odd.example"}  # "_" is a character here, not a wildcard
    assert found("%") == set()
    assert len(found("")) == 3


def test_the_contact_page_shows_the_life_cycle_with_visitor_strings_inert(board, session) -> None:
    app, store = board
    contact = seed_hostile(session, store, utcnow())
    session.commit()
    client, _token = logged_in(app, "marketer@shop.example")
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert HOSTILE_NAME not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert(2)" not in page and "<svg onload" not in page
    assert f'href="{HOSTILE_URL}' not in page and 'href="javascript:' not in page.lower()
    assert HOSTILE_URL in page  # still shown, as text, so the store can see what the visitor sent
    for title in ("Abandoned a cart", "Became a one-time buyer", "Entered the 90-day tier", "Clicked in", "by a machine"):
        assert title in page, title
    listing = client.get("/contacts").get_data(as_text=True)
    assert HOSTILE_NAME not in listing and "&lt;img src=x onerror=alert(1)&gt;" in listing


def test_unsubscribing_from_the_dashboard_takes_effect_at_once(board, session, database) -> None:
    app, store = board
    contact = make_contact(session, store)
    make_order(session, contact, T0)
    [message_id] = plan_winback(session, store, [contact])
    session.commit()
    client, token = logged_in(app, "marketer@shop.example")
    assert client.post(f"/contacts/{contact.id}/unsubscribe", data={"csrf_token": token}).status_code == 302
    with database.transaction() as check:
        assert check.get(Contact, contact.id).unsubscribed_at is not None  # type: ignore[union-attr]
        message = check.get(Message, message_id)
        assert message is not None and (message.status, message.skip_reason) == ("skipped", "unsubscribed")
        assert check.scalar(select(Suppression.reason).where(Suppression.email_hash == email_hash(contact.email))) == "unsubscribed"
    assert "Unsubscribed" in client.get(f"/contacts/{contact.id}").get_data(as_text=True)


def test_erasing_needs_the_address_typed_again_then_leaves_only_a_hash(board, session, database) -> None:
    app, store = board
    contact = make_contact(session, store, email="leave.me@example.com")
    make_order(session, contact, T0)
    session.commit()
    client, token = logged_in(app, "marketer@shop.example")
    assert "Type the email address to confirm" in client.get(f"/contacts/{contact.id}/erase").get_data(as_text=True)
    wrong = client.post(f"/contacts/{contact.id}/erase", data={"csrf_token": token, "confirm": "someone@else.example"})
    assert wrong.status_code == 422
    with database.transaction() as check:
        assert check.get(Contact, contact.id) is not None
    right = client.post(f"/contacts/{contact.id}/erase", data={"csrf_token": token, "confirm": " Leave.Me@example.com "})
    assert right.status_code == 302
    with database.transaction() as check:
        assert check.get(Contact, contact.id) is None
        reason = check.scalar(select(Suppression.reason).where(Suppression.store_id == store.id, Suppression.email_hash == email_hash("leave.me@example.com")))
        assert reason == "erased"
    listing = client.get("/contacts").get_data(as_text=True)
    assert "leave.me@example.com" not in listing and "was erased" in listing
    assert client.get(f"/contacts/{contact.id}").status_code == 404


def test_the_life_cycle_names_each_tier_entered_and_each_return() -> None:
    first, second = T0, T0 + timedelta(days=200)
    moments = lifecycle_moments([second, first], [90, 180, 360], T0 + timedelta(days=400))
    assert [(m.at - T0).days for m in moments] == [0, 90, 180, 200, 200, 290, 380]
    assert [m.title for m in moments] == [
        "Became a one-time buyer", "Entered the 90-day tier", "Entered the 180-day tier",
        "Back to active", "Became a repeat buyer", "Entered the 90-day tier", "Entered the 180-day tier",
    ]
    assert lifecycle_moments([], [90], T0) == []
