"""The tracking snippet in headless Chromium, on a store page served from a second origin."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailer.models import Cart, Contact, Event
from tests.browser.conftest import LOADED, fill_a_cart

SNIPPET = Path(__file__).resolve().parents[2] / "mailer" / "web" / "static" / "snippet.js"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RETRY_QUEUE = "JSON.parse(localStorage.getItem('mailer_retry') || '[]')"


def _contacts(server: Any, email: str) -> list[Contact]:
    with server.database.transaction() as session:
        return list(session.scalars(select(Contact).where(Contact.store_id == server.store_id, Contact.email == email)))


def _cart(server: Any, external_id: str) -> Cart | None:
    with server.database.transaction() as session:
        return session.scalar(select(Cart).where(Cart.store_id == server.store_id, Cart.external_id == external_id))


def _events(server: Any, name: str) -> list[Event]:
    with server.database.transaction() as session:
        return list(session.scalars(select(Event).where(Event.store_id == server.store_id, Event.name == name)))


def test_a_visitor_who_types_an_email_becomes_one_contact_with_cart_and_history(
    mailer_server, store_site, context, watched_page, wait_until, screenshot
) -> None:
    page, problems = watched_page
    fill_a_cart(page, store_site)
    page.fill("#signup-email", "not-an-email")
    page.keyboard.press("Tab")  # change + blur: refused client-side, nothing is sent
    page.fill("#signup-email", "Shopper@Example.com")
    page.keyboard.press("Tab")
    page.click("#signup button")
    assert page.text_content("#cart-count") == "Cart (3)" and page.text_content("#thanks") == "Thanks!"
    screenshot(page, "snippet-store-page")
    anonymous_id = next(c["value"] for c in context.cookies() if c["name"] == "mailer_aid")
    page.goto(store_site.page_url("bye.html"))  # leaving: pagehide sends what is left by beacon

    sent = wait_until(
        lambda: (events := mailer_server.recorder.events()) and any(e["type"] == "identify" for e in events) and events,
        "the identify to reach the server",
    )
    assert {e["anonymous_id"] for e in sent} == {anonymous_id}
    assert [e.get("email") for e in sent if e["type"] == "identify"] == ["shopper@example.com"]
    assert len({e["id"] for e in sent}) == len(sent)

    contact = wait_until(lambda: _contacts(mailer_server, "shopper@example.com"), "the contact")
    assert len(contact) == 1
    cart_id = next(e["properties"]["cart_id"] for e in sent if e.get("event") == "cart_updated")
    cart = wait_until(lambda: (c := _cart(mailer_server, cart_id)) and c.contact_id is not None and c, "the cart's owner")
    assert cart.contact_id == contact[0].id
    assert {(item.sku, item.quantity) for item in cart.items} == {("MUG-1", 1), ("TEA-7", 2)}
    assert cart.value == Decimal("28.50") and cart.restore_url.endswith(f"/cart?restore={cart_id}")
    views = _events(mailer_server, "product_viewed")
    assert len(views) == 2 and {v.contact_id for v in views} == {contact[0].id}
    assert mailer_server.recorder.refusals() == []
    assert problems.page_errors == [] and problems.console_errors == []


def test_calls_made_before_the_snippet_loads_are_replayed_with_a_first_party_id(
    mailer_server, store_site, context, watched_page, wait_until
) -> None:
    page, problems = watched_page
    page.goto(store_site.page_url("product.html"))
    page.wait_for_function(LOADED)
    assert page.evaluate("window.calledBeforeLoad") is True
    events = wait_until(lambda: len(mailer_server.recorder.events()) >= 2 and mailer_server.recorder.events(),
                        "the queued calls")
    assert [(e["type"], e["event"], e["properties"]["sku"]) for e in events] == [
        ("track", "product_viewed", "MUG-1"), ("track", "product_viewed", "TEA-7"),
    ]
    assert mailer_server.recorder.received[0].body["key"] == mailer_server.public_key
    cookie = next(c for c in context.cookies() if c["name"] == "mailer_aid")
    assert UUID4.match(cookie["value"]) and cookie["path"] == "/" and cookie["sameSite"] == "Lax"
    expires = datetime.fromtimestamp(cookie["expires"], UTC)
    assert timedelta(days=364) < expires - datetime.now(UTC) < timedelta(days=366)
    assert page.evaluate("localStorage.getItem('mailer_aid')") == cookie["value"]
    for event in events:
        assert UUID4.match(event["id"]) and event["anonymous_id"] == cookie["value"] and "email" not in event
        assert abs(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(minutes=1)
        assert set(event) == {"id", "type", "event", "properties", "anonymous_id", "timestamp"}

    # After loading, the queue form still works, and an email field added later is noticed too.
    page.evaluate("mailer.q.push(['track', 'checkout_started', {cart_id: 'c-1'}])")
    page.evaluate("""() => {
        const input = document.createElement('input');
        input.name = 'billing_email';
        document.body.appendChild(input);
    }""")
    page.fill("input[name=billing_email]", "late@example.com")
    page.keyboard.press("Tab")
    later = wait_until(lambda: len(mailer_server.recorder.events()) >= 4 and mailer_server.recorder.events()[2:],
                       "the calls made after loading")
    assert [(e["type"], e.get("event"), e.get("email")) for e in later] == [
        ("track", "checkout_started", None), ("identify", None, "late@example.com"),
    ]
    # An event the server refuses is reported to the store's developer as a console warning.
    page.evaluate("mailer.track('product_viewed', {sku: 'MUG-1', colour: 'blue'}); mailer.flush()")
    wait_until(lambda: any("mailer: events refused" in w for w in problems.console_warnings), "the warning", page=page)
    assert problems.page_errors == [] and problems.console_errors == []


def test_the_snippet_never_breaks_the_page_when_the_api_is_down_and_retries_later(
    mailer_server, store_site, context, watched_page, wait_until, screenshot, free_port
) -> None:
    page, problems = watched_page
    # The snippet as if served from a host nobody listens on, so its API calls go there and fail.
    dead_src = f"http://127.0.0.1:{free_port()}/snippet.js"
    page.route(dead_src, lambda route: route.fulfill(body=SNIPPET.read_bytes(), content_type="application/javascript"))
    page.goto(store_site.page_url("index.html", dead_src))
    page.wait_for_function(LOADED)

    page.click("#add-mug")
    hostile = page.evaluate("""() => {
        const cyclic = {}; cyclic.self = cyclic;
        mailer.track('cart_updated', cyclic);
        mailer.track();
        mailer.track(42, 'x');
        mailer.identify(null);
        mailer.identify({email: 'nobody'});
        mailer.q.push(null, ['nope'], ['track'], 'track');
        for (let i = 0; i < 80; i++) mailer.track('product_viewed', {sku: 'S' + i});
        return 'the page carried on';
    }""")
    assert hostile == "the page carried on"
    page.fill("#signup-email", "down@example.com")
    page.click("#signup button")
    assert page.text_content("#cart-count") == "Cart (1)" and page.text_content("#thanks") == "Thanks!"
    saved = wait_until(
        lambda: (kept := page.evaluate(RETRY_QUEUE)) and kept[-1]["type"] == "identify" and kept,
        "failed events, the identify last, kept for a retry",
    )
    assert len(saved) == 50  # the newest, capped
    assert saved[-1]["type"] == "identify" and saved[-1]["email"] == "down@example.com"
    assert [e["properties"]["sku"] for e in saved[:-1]] == [f"S{i}" for i in range(31, 80)]
    screenshot(page, "snippet-api-down")
    assert problems.page_errors == []
    # What Chromium logs on its own about the refused connections, and nothing from the snippet.
    assert all("ERR_CONNECTION_REFUSED" in line for line in problems.console_errors), problems.console_errors
    assert mailer_server.recorder.events() == []

    # The next page with a reachable API sends the kept events, with their original ids.
    page.goto(store_site.page_url("index.html"))
    page.wait_for_function(LOADED)
    wait_until(lambda: len(mailer_server.recorder.events()) >= 50, "the retried events")
    assert [e["id"] for e in mailer_server.recorder.events()[:50]] == [e["id"] for e in saved]
    assert page.evaluate("localStorage.getItem('mailer_retry')") is None


@pytest.mark.parametrize("leave", ["navigate", "close"])
def test_events_still_waiting_when_the_visitor_leaves_go_out_by_beacon(
    mailer_server, store_site, watched_page, wait_until, leave
) -> None:
    page, _problems = watched_page
    page.goto(store_site.page_url("index.html"))
    page.wait_for_function(LOADED)
    # Well inside the one-second batching delay: only the pagehide/visibilitychange flush can send it.
    page.evaluate("mailer.identify({email: 'leaving@example.com', first_name: 'Lee'})")
    if leave == "navigate":
        page.goto(store_site.page_url("bye.html"))
    else:
        page.close(run_before_unload=True)
    wait_until(lambda: mailer_server.recorder.events(), "the beacon")
    [request] = mailer_server.recorder.received
    assert request.fetch_mode == "no-cors"  # sendBeacon's request, not the page's fetch
    assert [(e["type"], e["email"], e["traits"]) for e in request.body["batch"]] == [
        ("identify", "leaving@example.com", {"first_name": "Lee"}),
    ]
    assert wait_until(lambda: _contacts(mailer_server, "leaving@example.com"), "the contact")[0].first_name == "Lee"
