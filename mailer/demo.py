"""`mailer demo`: a demo store with a year of orders, then a month of simulated sends, opens, clicks and returns."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from mailer.campaigns.reasons import REASON_KEYS, record_reason
from mailer.campaigns.sync import sync_campaigns
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Transport
from mailer.engine import tick
from mailer.ingest.apply import ingest_batch
from mailer.ingest.identity import get_or_create_contact
from mailer.ingest.orders import NewOrder, record_order
from mailer.models import (
    Campaign,
    Cart,
    CartItem,
    Contact,
    Coupon,
    Enrollment,
    Link,
    Message,
    Store,
)
from mailer.stores import create_store, create_user
from mailer.tracking.touches import record_click, record_open
from mailer.tracking.unsubscribe import unsubscribe

DEMO_DOMAIN = "demo-shop.example"
DEMO_LOGIN = ("owner@demo-shop.example", "demo-password")
MARKETER_LOGIN = ("marketer@demo-shop.example", "demo-password")
SIMULATED_DAYS = 30

FIRST_NAMES = ["Ada", "Grace", "Linus", "Margaret", "Alan", "Katherine", "Dennis", "Barbara", "Ken", "Frances",
               "Tim", "Radia", "Edsger", "Hedy", "John", "Joan", "Niklaus", "Sophie", "Bjarne", "Anita"]
PRODUCTS = [
    ("MUG-BLUE", "Blue enamel mug", "18.00"),
    ("TEA-EARL", "Earl Grey, 100 g tin", "12.50"),
    ("POT-CAST", "Cast-iron teapot", "64.00"),
    ("CUP-SET", "Set of 4 porcelain cups", "42.00"),
    ("BAG-LINEN", "Linen tote bag", "24.00"),
]
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
APPLE_PROXY = "Mozilla/5.0"


def _item(rng: random.Random) -> dict[str, object]:
    sku, name, price = rng.choice(PRODUCTS)
    return {"sku": sku, "name": name, "price": price, "quantity": rng.randint(1, 2),
            "url": f"https://{DEMO_DOMAIN}/products/{sku.lower()}"}


def _new_cart(session, store: Store, contact: Contact, key: str, last_activity: datetime, rng: random.Random) -> Cart:  # type: ignore[no-untyped-def]
    cart = Cart(store_id=store.id, external_id=key, contact_id=contact.id, currency=store.currency,
                restore_url=f"https://{DEMO_DOMAIN}/cart/restore/{key}", status="open",
                last_activity_at=last_activity, created_at=last_activity)
    total = Decimal("0")
    for position in range(rng.randint(1, 3)):
        item = _item(rng)
        price, quantity = Decimal(str(item["price"])), int(item["quantity"])  # type: ignore[call-overload]
        cart.items.append(CartItem(position=position, sku=str(item["sku"]), name=str(item["name"]), price=price,
                                   quantity=quantity, url=str(item["url"])))
        total += price * quantity
    cart.value = total
    session.add(cart)
    return cart


def _create_store(session, now: datetime, rng: random.Random) -> Store:  # type: ignore[no-untyped-def]
    """The store, its logins and a history of orders ending before the simulated month."""
    store, _secret = create_store(session, name="Demo Tea Shop", domain=DEMO_DOMAIN, now=now, timezone="Europe/London", currency="GBP")
    store.postal_address = "12 Leaf Lane, Bristol BS1 4DJ, United Kingdom"
    store.settings = {"cost_per_email": 0.002}
    sync_campaigns(session, store, now)
    winback = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
    winback.holdout_percent, winback.edited = 15, True  # so the report can show the lift
    for email, role in ((DEMO_LOGIN[0], "owner"), (MARKETER_LOGIN[0], "marketer")):
        create_user(session, store_id=store.id, email=email, password=DEMO_LOGIN[1], role=role, now=now)
    start = now - timedelta(days=SIMULATED_DAYS)
    for i in range(400):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        contact = get_or_create_contact(session, store.id, f"{first.lower()}.{i}@customers.example", start,
                                        first_name=first, consent="granted" if i % 5 else "unknown")
        for n in range(1 if i % 4 else rng.randint(2, 4)):
            placed = start - timedelta(days=rng.randint(1, 420), minutes=rng.randint(0, 1440))
            item = _item(rng)
            record_order(session, contact, NewOrder(
                external_id=f"D{i:04d}-{n}", placed_at=placed,
                total=Decimal(str(item["price"])) * int(item["quantity"]),  # type: ignore[call-overload]
                currency=store.currency, items=(item,), source="import",
            ), start)
    return store


def _order(session, store: Store, contact: Contact, when: datetime, rng: random.Random, *, coupon: str | None = None, cart: str | None = None) -> None:  # type: ignore[no-untyped-def]
    properties: dict[str, object] = {"order_id": f"W-{uuid.uuid4().hex[:10]}", "currency": store.currency,
                                     "total": f"{rng.choice([24, 36, 42, 58, 64, 90])}.00"}
    if coupon:
        properties["coupon"] = coupon
    if cart:
        properties["cart_id"] = cart
    event = {"id": str(uuid.uuid4()), "type": "track", "event": "order_placed", "email": contact.email,
             "timestamp": when.isoformat(), "properties": properties}
    ingest_batch(session, store, [event], now=when, public=False, source="demo")


def _simulate_day(session, store: Store, day_start: datetime, now: datetime, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """What recipients did with the emails sent at `day_start`: people and machines, orders, answers."""
    rows = session.execute(
        select(Message, Enrollment, Campaign.kind)
        .join(Enrollment, Enrollment.id == Message.enrollment_id).join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.store_id == store.id, Message.sent_at >= day_start, Message.sent_at < day_start + timedelta(hours=1))
    ).all()
    for message, enrollment, kind in rows:
        contact = session.get(Contact, message.contact_id)
        later = day_start + timedelta(hours=rng.randint(1, 20))
        if later >= now or contact is None:
            continue
        if rng.random() < 0.12:
            record_open(session.connection(), message.id, now=day_start + timedelta(seconds=rng.randint(1, 60)), user_agent=APPLE_PROXY, ip="17.58.0.10")
        if rng.random() < 0.03:
            honeypot = session.scalar(select(Link).where(Link.message_id == message.id, Link.kind == "honeypot"))
            record_click(session.connection(), message.id, honeypot.position, now=day_start + timedelta(seconds=2), user_agent="python-requests/2.32", ip="198.51.100.7")
        if rng.random() > 0.48:
            continue
        record_open(session.connection(), message.id, now=later, user_agent=BROWSER, ip="203.0.113.20")
        clicked = rng.random() < 0.32
        if clicked:
            link = session.scalar(select(Link).where(Link.message_id == message.id, Link.kind == "content").order_by(Link.position).limit(1))
            record_click(session.connection(), message.id, link.position, now=later + timedelta(minutes=1), user_agent=BROWSER, ip="203.0.113.20")
        if kind == "winback" and rng.random() < 0.08:
            record_reason(session, message, rng.choice(REASON_KEYS), later + timedelta(minutes=2))
        if rng.random() < 0.01:
            unsubscribe(session, contact, later + timedelta(minutes=3), message=message)
            continue
        if rng.random() < (0.38 if clicked else 0.06):
            when = later + timedelta(hours=rng.randint(1, 40))
            if when < now:
                code = session.scalar(select(Coupon.code).where(Coupon.message_id == message.id))
                cart = session.get(Cart, enrollment.cart_id) if enrollment.cart_id else None
                _order(session, store, contact, when, rng, coupon=code if rng.random() < 0.7 else None,
                       cart=cart.external_id if cart is not None else None)
    # The control group is watched the same way: some come back on their own.
    controls = session.scalars(
        select(Enrollment).where(Enrollment.store_id == store.id, Enrollment.group == "control",
                                 Enrollment.entered_at >= day_start, Enrollment.entered_at < day_start + timedelta(hours=1))
    ).all()
    for enrollment in controls:
        when = day_start + timedelta(hours=rng.randint(2, 96))
        contact = session.get(Contact, enrollment.contact_id)
        if rng.random() < 0.05 and when < now and contact is not None:
            _order(session, store, contact, when, rng)


def seed_demo(database: Database, transport: Transport, settings: Settings, now: datetime) -> list[str]:
    """Create the demo store once (later runs reuse it), simulate its last month, then tick at `now`."""
    rng = random.Random(42)  # the same demo every time
    lines: list[str] = []
    with database.transaction() as session:
        store = session.scalar(select(Store).where(Store.domain == DEMO_DOMAIN))
        created = store is None
        if store is None:
            store = _create_store(session, now, rng)
        store_id, public_key = store.id, store.public_key
    if created:
        start = now - timedelta(days=SIMULATED_DAYS)
        for day in range(SIMULATED_DAYS):
            day_start = start + timedelta(days=day, hours=10)
            with database.transaction() as session:
                store = session.get(Store, store_id)
                shoppers = session.scalars(select(Contact).where(Contact.store_id == store_id).order_by(Contact.id).offset(rng.randrange(380)).limit(3))
                for n, shopper in enumerate(shoppers):
                    _new_cart(session, store, shopper, f"demo-{day}-{n}", day_start - timedelta(hours=2, minutes=rng.randint(0, 50)), rng)
            tick(database, transport, settings, day_start)
            with database.transaction() as session:
                _simulate_day(session, session.get(Store, store_id), day_start, now, rng)
        lines.append(f"created demo store {store_id}: 400 customers, a simulated month of carts, emails and returns")
    else:
        lines.append(f"demo store {store_id} already exists")
    report = tick(database, transport, settings, now)
    lines.append(f"engine tick now: {report.sent} emails sent (captured in the outbox)")
    lines.append(f"log in at {settings.base_url}/login as {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]} "
                 f"(or {MARKETER_LOGIN[0]}, same password)")
    lines.append(f"snippet key: {public_key}")
    return lines
