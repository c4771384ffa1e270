"""`mailer demo`: a demo store with a year of order history, open carts, a login and some traffic."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from mailer.campaigns.sync import sync_campaigns
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Transport
from mailer.engine import tick
from mailer.ingest.identity import get_or_create_contact
from mailer.ingest.orders import NewOrder, record_order
from mailer.models import Cart, CartItem, Store
from mailer.stores import create_store, create_user

DEMO_DOMAIN = "demo-shop.example"
DEMO_LOGIN = ("owner@demo-shop.example", "demo-password")
MARKETER_LOGIN = ("marketer@demo-shop.example", "demo-password")

FIRST_NAMES = ["Ada", "Grace", "Linus", "Margaret", "Alan", "Katherine", "Dennis", "Barbara", "Ken", "Frances",
               "Tim", "Radia", "Edsger", "Hedy", "John", "Joan", "Niklaus", "Sophie", "Bjarne", "Anita"]
PRODUCTS = [
    ("MUG-BLUE", "Blue enamel mug", "18.00"),
    ("TEA-EARL", "Earl Grey, 100 g tin", "12.50"),
    ("POT-CAST", "Cast-iron teapot", "64.00"),
    ("CUP-SET", "Set of 4 porcelain cups", "42.00"),
    ("BAG-LINEN", "Linen tote bag", "24.00"),
]


def _product_item(rng: random.Random) -> dict[str, object]:
    sku, name, price = rng.choice(PRODUCTS)
    return {"sku": sku, "name": name, "price": price, "quantity": rng.randint(1, 2),
            "url": f"https://{DEMO_DOMAIN}/products/{sku.lower()}"}


def seed_demo(database: Database, transport: Transport, settings: Settings, now: datetime) -> list[str]:
    """Create the demo store once (later runs reuse it), then run one engine tick; returns what it did."""
    rng = random.Random(42)  # the same demo every time
    lines: list[str] = []
    with database.transaction() as session:
        store = session.scalar(select(Store).where(Store.domain == DEMO_DOMAIN))
        if store is None:
            store, _secret = create_store(session, name="Demo Tea Shop", domain=DEMO_DOMAIN, now=now, timezone="Europe/London", currency="GBP")
            store.postal_address = "12 Leaf Lane, Bristol BS1 4DJ, United Kingdom"
            sync_campaigns(session, store, now)
            for email, role in ((DEMO_LOGIN[0], "owner"), (MARKETER_LOGIN[0], "marketer")):
                create_user(session, store_id=store.id, email=email, password=DEMO_LOGIN[1], role=role, now=now)
            customers = 0
            for i in range(240):
                first = FIRST_NAMES[i % len(FIRST_NAMES)]
                contact = get_or_create_contact(
                    session, store.id, f"{first.lower()}.{i}@customers.example", now,
                    first_name=first, consent="granted" if i % 5 else "unknown",
                )
                orders = 1 if i % 4 else rng.randint(2, 4)
                for n in range(orders):
                    placed = now - timedelta(days=rng.randint(1, 420), minutes=rng.randint(0, 1440))
                    item = _product_item(rng)
                    record_order(session, contact, NewOrder(
                        external_id=f"D{i:04d}-{n}", placed_at=placed,
                        total=Decimal(str(item["price"])) * int(item["quantity"]),  # type: ignore[arg-type]
                        currency=store.currency, items=(item,), source="import",
                    ), now)
                customers += 1
            for i in range(12):
                contact = get_or_create_contact(session, store.id, f"shopper.{i}@visitors.example", now, first_name=rng.choice(FIRST_NAMES), consent="granted")
                cart = Cart(store_id=store.id, external_id=f"demo-cart-{i}", contact_id=contact.id, currency=store.currency,
                            restore_url=f"https://{DEMO_DOMAIN}/cart/restore/demo-cart-{i}", status="open",
                            last_activity_at=now - timedelta(minutes=rng.randint(40, 60 * 24 * 6)), created_at=now)
                total = Decimal("0")
                for position in range(rng.randint(1, 3)):
                    item = _product_item(rng)
                    price = Decimal(str(item["price"]))
                    cart.items.append(CartItem(position=position, sku=str(item["sku"]), name=str(item["name"]), price=price,
                                               quantity=int(item["quantity"]), url=str(item["url"])))  # type: ignore[call-overload]
                    total += price * int(item["quantity"])  # type: ignore[call-overload]
                cart.value = total
                session.add(cart)
            lines.append(f"created demo store {store.id} with {customers} customers and 12 open carts")
        else:
            lines.append(f"demo store {store.id} already exists")
        lines.append(f"log in at {settings.base_url}/login as {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]} "
                     f"(or {MARKETER_LOGIN[0]}, same password)")
        lines.append(f"snippet key: {store.public_key}")
    report = tick(database, transport, settings, now)
    lines.append(f"engine tick: {report.sent} emails sent (captured in the outbox), {report.skipped} skipped")
    return lines
