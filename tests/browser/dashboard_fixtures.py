"""Dashboard test data and fixtures: a store with a month of sends, hostile visitor strings, logins, a live app."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from mailer import create_app
from mailer.campaigns.sync import sync_campaigns
from mailer.clock import utcnow
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import CaptureTransport
from mailer.models import (
    Campaign,
    CapturedEmail,
    Cart,
    CartItem,
    Contact,
    Coupon,
    Enrollment,
    Event,
    Link,
    Message,
    Order,
    Store,
    TrackingEvent,
)
from mailer.outbox.test_send import compose_test_email
from mailer.stores import create_store, create_user
from mailer.templates_store import save_version
from mailer.web.ui.campaign_editing import save_campaign, snapshot, validate_definition
from tests.support.smtp_server import SMTPSink

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"

# What a visitor may type into a store's pages; the dashboard must show it as text, inertly.
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_LAST_NAME = '"><script>alert(2)</script>'
HOSTILE_URL = "javascript:alert(1)"
HOSTILE_ITEM = "<svg onload=alert(3)>Mug"


@dataclass
class Seeded:
    """Ids and logins of the seeded stores."""

    store_id: int
    other_store_id: int
    new_store_id: int
    owner: str
    marketer: str
    new_owner: str
    other_owner: str
    campaign_ids: list[int]
    contact_id: int
    hostile_contact_id: int
    captured_id: int
    template_version_id: int
    ids: dict[str, int] = field(default_factory=dict)


def _customer(session: Session, store: Store, email: str, first: str, last: str, now: datetime) -> Contact:
    contact = Contact(
        store_id=store.id, email=email, first_name=first, last_name=last, consent="granted",
        consent_source="checkout", consent_at=now - timedelta(days=400), created_at=now - timedelta(days=420), updated_at=now,
    )
    session.add(contact)
    session.flush()
    return contact


def _order(session: Session, contact: Contact, placed_at: datetime, total: str, **fields: object) -> Order:
    order = Order(
        store_id=contact.store_id, external_id=f"#{1000 + contact.id}-{placed_at:%m%d%H%M}", contact_id=contact.id,
        placed_at=placed_at, total=Decimal(total), currency="USD",
        items=[{"name": "Linen Throw Pillow", "sku": "PIL-1", "quantity": 1, "price": total}], created_at=placed_at, **fields,
    )
    session.add(order)
    contact.orders_count += 1
    contact.total_spent += Decimal(total)
    contact.first_order_at = min(contact.first_order_at or placed_at, placed_at)
    contact.last_order_at = max(contact.last_order_at or placed_at, placed_at)
    session.flush()
    return order


def _send(session: Session, campaign: Campaign, contact: Contact, step: int, sent_at: datetime, *, tier: int | None = None,
          cart: Cart | None = None, group: str = "treatment") -> Message | None:
    """An enrollment and its message as the engine leaves them once sent (or held out)."""
    enrollment = Enrollment(
        store_id=contact.store_id, campaign_id=campaign.id, contact_id=contact.id,
        subject_key=f"seed:{campaign.key}:{contact.id}:{step}", cart_id=cart.id if cart else None, tier=tier,
        group=group, status="completed", anchor_at=sent_at, entered_at=sent_at - timedelta(minutes=5),
    )
    session.add(enrollment)
    session.flush()
    if group == "control":
        return None
    spec = campaign.step(step)
    subject = spec.subject.replace("{{ contact.first_name or 'Hi' }}", contact.first_name or "Hi")
    subject = subject.replace("{{ contact.first_name or 'friend' }}", contact.first_name or "friend")
    subject = subject.replace("{{ coupon.percent_off }}", str(spec.discount_percent))
    message = Message(
        store_id=contact.store_id, campaign_id=campaign.id, enrollment_id=enrollment.id, contact_id=contact.id,
        step_index=step, status="sent", due_at=sent_at, sent_at=sent_at, to_email=contact.email, subject=subject,
        created_at=sent_at - timedelta(minutes=5), attempts=1,
    )
    session.add(message)
    session.flush()
    session.add(Link(store_id=contact.store_id, message_id=message.id, position=0, url="https://juniper.example/cart", kind="content"))
    return message


def _track(session: Session, message: Message, kind: str, at: datetime, machine: bool = False, link: bool = False) -> None:
    link_id = session.scalar(select(Link.id).where(Link.message_id == message.id).limit(1)) if link else None
    session.add(TrackingEvent(
        store_id=message.store_id, message_id=message.id, contact_id=message.contact_id, kind=kind, link_id=link_id,
        machine=machine, machine_reason="mpp" if machine and kind == "open" else ("scanner" if machine else None),
        user_agent="Mozilla/5.0", occurred_at=at,
    ))


def _cart(session: Session, contact: Contact, at: datetime, items: list[tuple[str, str, str | None]]) -> Cart:
    cart = Cart(
        store_id=contact.store_id, external_id=f"cart-{contact.id}-{at:%d%H%M}", contact_id=contact.id, currency="USD",
        restore_url="https://juniper.example/cart/restore?token=abc", status="open", last_activity_at=at,
        abandoned_at=at + timedelta(minutes=30), created_at=at - timedelta(minutes=20),
    )
    for position, (name, price, url) in enumerate(items):
        cart.items.append(CartItem(position=position, sku=f"SKU-{position}", name=name, price=Decimal(price), quantity=1, url=url))
    cart.value = sum((item.price for item in cart.items), Decimal("0"))
    session.add(cart)
    session.flush()
    return cart


def seed_history(session: Session, store: Store, now: datetime, rng: random.Random) -> None:
    """A month of win-back and cart emails with human and machine engagement, credited orders and a holdout."""
    campaigns = {c.key: c for c in session.scalars(select(Campaign).where(Campaign.store_id == store.id))}
    winback, cart_campaign = campaigns["winback"], campaigns["abandoned_cart"]
    first_names = ["Ada", "Grace", "Linus", "Margaret", "Alan", "Katherine", "Dennis", "Barbara", "Ken", "Frances", "Radia", "Hedy"]
    for i in range(72):
        first = first_names[i % len(first_names)]
        contact = _customer(session, store, f"{first.lower()}.{i}@customers.example", first, "Lovelace" if i % 3 == 0 else "Hopper", now)
        days_ago = rng.choice([95, 120, 150, 185, 200, 260, 365, 380])
        _order(session, contact, now - timedelta(days=days_ago, hours=rng.randint(0, 20)), f"{rng.randint(30, 140)}.00")
        tier = 1 if days_ago < 180 else (2 if days_ago < 360 else 3)
        sent_at = now - timedelta(days=rng.randint(0, 27), hours=rng.randint(0, 20), minutes=rng.randint(0, 59))
        group = "control" if i % 9 == 0 else "treatment"
        message = _send(session, winback, contact, tier, sent_at, tier=tier, group=group)
        if message is None:
            if rng.random() < 0.04:
                _order(session, contact, sent_at + timedelta(days=2), "55.00")
            continue
        if rng.random() < 0.55:
            _track(session, message, "open", sent_at + timedelta(hours=rng.randint(1, 30)))
        if rng.random() < 0.25:
            _track(session, message, "open", sent_at + timedelta(seconds=3), machine=True)
        if rng.random() < 0.3:
            _track(session, message, "click", sent_at + timedelta(hours=rng.randint(2, 40)), link=True)
            if rng.random() < 0.7:
                placed = sent_at + timedelta(hours=rng.randint(3, 60))
                if placed < now:
                    order = _order(session, contact, placed, f"{rng.randint(40, 160)}.00", attributed_message_id=message.id, attribution="click")
                    coupon = Coupon(store_id=store.id, code=f"JUNI-SEED{i:04d}", message_id=message.id, contact_id=contact.id,
                                    percent_off=winback.step(tier).discount_percent, expires_at=sent_at + timedelta(days=14),
                                    redeemed_at=placed, order_id=order.id, created_at=sent_at)
                    session.add(coupon)
                    order.coupon_code, order.attribution = coupon.code, "coupon"
        if rng.random() < 0.03:
            _track(session, message, "unsubscribe", sent_at + timedelta(hours=5))
    for i in range(20):
        contact = _customer(session, store, f"shopper.{i}@visitors.example", first_names[(i + 5) % len(first_names)], "", now)
        abandoned = now - timedelta(days=rng.randint(0, 26), hours=rng.randint(1, 20))
        cart = _cart(session, contact, abandoned, [("Hand-thrown Stoneware Mug", "24.50", "https://juniper.example/products/mug"),
                                                  ("Waxed Canvas Tote", "58.00", "https://juniper.example/products/tote")])
        for step, delay in ((1, timedelta(minutes=31)), (2, timedelta(days=1, minutes=31))):
            sent_at = abandoned + delay
            if sent_at >= now:
                break
            message = _send(session, cart_campaign, contact, step, sent_at, cart=cart)
            assert message is not None
            if rng.random() < 0.5:
                _track(session, message, "open", sent_at + timedelta(minutes=rng.randint(5, 300)))
            if rng.random() < 0.3:
                _track(session, message, "click", sent_at + timedelta(minutes=rng.randint(10, 400)), link=True)
                if rng.random() < 0.7 and sent_at + timedelta(hours=8) < now:
                    _order(session, contact, sent_at + timedelta(hours=8), str(cart.value), cart_id=cart.id,
                           attributed_message_id=message.id, attribution="click")
                    cart.status = "converted"
                    break
    winback.holdout_percent = 10


def seed_hostile(session: Session, store: Store, now: datetime) -> Contact:
    """A contact whose name, cart and events carry markup and `javascript:` URLs, as a visitor could send them."""
    contact = _customer(session, store, "hostile@visitors.example", HOSTILE_NAME, HOSTILE_LAST_NAME, now)
    cart = _cart(session, contact, now - timedelta(days=2), [(HOSTILE_ITEM, "12.00", HOSTILE_URL), ("Plain mug", "9.00", "https://juniper.example/p/mug")])
    cart.restore_url = "javascript:alert(2)"
    session.add(Event(store_id=store.id, event_id="hostile-1", type="track", name="product_viewed", contact_id=contact.id,
                      properties={"name": HOSTILE_ITEM, "url": HOSTILE_URL}, occurred_at=now - timedelta(days=2, minutes=5),
                      received_at=now - timedelta(days=2, minutes=5)))
    _order(session, contact, now - timedelta(days=100), "19.00")
    campaigns = {c.key: c for c in session.scalars(select(Campaign).where(Campaign.store_id == store.id))}
    message = _send(session, campaigns["abandoned_cart"], contact, 1, now - timedelta(days=2) + timedelta(minutes=31), cart=cart)
    assert message is not None
    message.subject = f"{HOSTILE_NAME}, you left something in your cart"
    _track(session, message, "open", now - timedelta(days=1))
    _track(session, message, "click", now - timedelta(days=1) + timedelta(seconds=2), machine=True, link=True)
    session.flush()
    return contact


def _new_store(session: Session, name: str, domain: str, now: datetime) -> Store:
    store, _secret = create_store(session, name=name, domain=domain, now=now)
    store.postal_address = "214 Alder Street, Portland, OR 97204, USA"
    sync_campaigns(session, store, now)
    session.flush()
    return store


def seed_dashboard(database: Database, settings: Settings, now: datetime | None = None) -> Seeded:
    """Store A with history, users and edits; store B (another tenant) with the same kinds of rows; a new store C."""
    now = now or utcnow()
    rng = random.Random(7)
    with database.transaction() as session:
        store = _new_store(session, "Juniper & Co.", "juniper.example", now - timedelta(days=60))
        owner = create_user(session, store_id=store.id, email="owner@juniper.example", password=PASSWORD, role="owner", now=now)
        create_user(session, store_id=store.id, email="marketer@juniper.example", password=PASSWORD, role="marketer", now=now)
        seed_history(session, store, now, rng)
        hostile = seed_hostile(session, store, now)
        # A customer the emails won back: a click, then an order credited to it.
        contact_id = session.scalar(
            select(Order.contact_id).join(Contact, Contact.id == Order.contact_id)
            .where(Order.store_id == store.id, Order.attribution == "coupon", Contact.email.like("%@customers.example"))
            .order_by(Order.placed_at.desc()).limit(1)
        )
        winback = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
        data = snapshot(winback)
        data["steps"][1]["discount_percent"] = 20
        definition, errors = validate_definition(winback.key, data, snapshot(winback))
        assert definition is not None, errors
        save_campaign(session, winback, definition, user_id=owner.id, now=now - timedelta(days=3))
        html = (ROOT / "templates/emails/cart/step1.html").read_text().replace("You left a few things behind", "Still thinking it over?")
        text = (ROOT / "templates/emails/cart/step1.txt").read_text()
        version = save_version(session, store_id=store.id, name="cart/step1", html=html, text=text, subject=None,
                               user_id=owner.id, now=now - timedelta(days=2))
        store_id, hostile_id, version_id = store.id, hostile.id, version.id
        campaign_ids = list(session.scalars(select(Campaign.id).where(Campaign.store_id == store.id)))

        other = _new_store(session, "Other Shop", "other.example", now)
        create_user(session, store_id=other.id, email="owner@other.example", password=PASSWORD, role="owner", now=now)
        other_id = other.id

        fresh = _new_store(session, "Fresh Goods", "fresh.example", now)
        create_user(session, store_id=fresh.id, email="owner@fresh.example", password=PASSWORD, role="owner", now=now)
        fresh_id = fresh.id

        email = compose_test_email(session, settings, store_id=store_id, template_name="test", to_email="owner@juniper.example", now=now)
    CaptureTransport(database).send(email.envelope, email.data)
    with database.transaction() as session:
        captured_id = session.scalar(select(CapturedEmail.id).where(CapturedEmail.store_id == store_id))
    return Seeded(
        store_id=store_id, other_store_id=other_id, new_store_id=fresh_id, owner="owner@juniper.example",
        marketer="marketer@juniper.example", new_owner="owner@fresh.example", other_owner="owner@other.example",
        campaign_ids=campaign_ids, contact_id=contact_id or 0, hostile_contact_id=hostile_id, captured_id=captured_id or 0,
        template_version_id=version_id,
    )


@dataclass
class Dashboard:
    """The app served on 127.0.0.1 over the seeded database, with the SMTP sink its test sends reach."""

    url: str
    seeded: Seeded
    database: Database
    sink: SMTPSink


def buffered(app: Any) -> Any:
    """WSGI middleware that reads each response whole and closes it before answering.

    werkzeug's development server skips `close()` on a response whose client hung up (a page
    left while its script loaded), and the unclosed static file is then a ResourceWarning,
    which this suite treats as an error. Buffering closes every file at once.
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        result = app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            if hasattr(result, "close"):
                result.close()

    return wrapped


@pytest.fixture(name="dashboard")
def dashboard_fixture(committed_database: Database, settings: Settings, smtp_sink: SMTPSink) -> Iterator[Dashboard]:
    """The real app, configured to send through the loopback SMTP sink, served by werkzeug in a thread."""
    configured = dataclasses.replace(settings, smtp_url=smtp_sink.url, base_url="http://127.0.0.1")
    seeded = seed_dashboard(committed_database, configured)
    app = create_app(configured, committed_database)
    server = make_server("127.0.0.1", 0, buffered(app), threaded=True)
    # server_close() then waits for requests still running (a fetch the page started as it was
    # left), so none is left holding a database connection when the test's database is disposed:
    # one that outlived the pool was closed only by the garbage collector, a ResourceWarning.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    thread.start()
    yield Dashboard(f"http://127.0.0.1:{server.server_port}", seeded, committed_database, smtp_sink)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def dashboard_pages(board: Dashboard) -> list[tuple[str, str]]:
    """(screenshot name, path) of every page a user can reach from the navigation."""
    seeded = board.seeded
    campaign = seeded.campaign_ids[-1]
    return [
        ("report", "/"),
        ("report-quarter", "/?from=2020-01-01&to=2020-03-31"),
        ("campaigns", "/campaigns"),
        ("campaign-edit", f"/campaigns/{campaign}"),
        ("templates", "/templates"),
        ("template-edit", "/templates/cart/step1"),
        ("template-layout", "/templates/base"),
        ("template-version", f"/templates/cart/step1/versions/{seeded.template_version_id}"),
        ("contacts", "/contacts"),
        ("contacts-search", "/contacts?q=lovelace"),
        ("contact", f"/contacts/{seeded.contact_id}"),
        ("contact-hostile", f"/contacts/{seeded.hostile_contact_id}"),
        ("contact-erase", f"/contacts/{seeded.contact_id}/erase"),
        ("settings", "/settings"),
        ("outbox", "/outbox"),
        ("outbox-email", f"/outbox/{seeded.captured_id}"),
    ]


def log_in(page: Page, dashboard: Dashboard, email: str) -> None:
    """Log in through the form, as a person would."""
    page.goto(f"{dashboard.url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{dashboard.url}/")


@pytest.fixture(name="shoot")
def shoot_fixture() -> Callable[[Page, str], Path]:
    """Save a screenshot of the whole page under test-artifacts/ (gitignored) for a person to look at.

    The viewport is first made as tall as the page: a full-page capture otherwise re-lays out
    the emails in their frames at a width of its own, and the picture lies.
    """

    def take(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        size = page.viewport_size or {"width": 1000, "height": 640}
        height = page.evaluate("() => Math.ceil(document.documentElement.scrollHeight)")
        page.set_viewport_size({"width": size["width"], "height": max(int(height), size["height"])})
        page.wait_for_timeout(150)  # frames re-lay out at the new size
        path = ARTIFACTS / f"dashboard-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(size)
        return path

    return take


def logged_in(app: Flask, email: str, password: str = PASSWORD) -> tuple[FlaskClient, str]:
    """A test client logged in through the form, and the session's CSRF token for its POSTs."""
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with client.session_transaction() as session:
        token = session["csrf"]  # a new one: the login starts a fresh session
    return client, token
