"""Helpers shared by the ingestion and API tests: a store with its keys, events, signatures, statements run."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.orm import Session

from mailer.campaigns.sync import sync_campaigns
from mailer.clock import utcnow
from mailer.db import Database
from mailer.models import Campaign, Contact, Coupon, Enrollment, Message, Store
from mailer.rendering.coupons import CouponRequest, issue_coupons
from mailer.stores import create_store

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Shop:
    """A committed store and the keys a client would hold."""

    id: int
    domain: str
    public_key: str
    secret_key: str
    webhook_secret: str

    @property
    def bearer(self) -> dict[str, str]:
        """The Authorization header of the server API."""
        return {"Authorization": f"Bearer {self.secret_key}"}


def make_shop(database: Database, domain: str = "shop.example", name: str = "Shop") -> Shop:
    """Create and commit a store with its default campaigns; returns its keys."""
    with database.transaction() as session:
        store, secret = create_store(session, name=name, domain=domain, now=utcnow())
        sync_campaigns(session, store, utcnow())
        return Shop(store.id, store.domain, store.public_key, secret, store.webhook_secret)


def fixture(name: str) -> dict[str, Any]:
    """A platform payload from tests/ingest/fixtures."""
    return json.loads((FIXTURES / name).read_text())


def sign(secret: str, body: bytes) -> str:
    """The base64 HMAC-SHA256 both Shopify and WooCommerce send."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def identify(event_id: str, email: str, **fields: Any) -> dict[str, Any]:
    """An identify event."""
    return {"id": event_id, "type": "identify", "email": email, **fields}


def track(event_id: str, name: str, properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A track event."""
    return {"id": event_id, "type": "track", "event": name, "properties": properties, **fields}


def cart(cart_id: str, *items: tuple[str, str, int], **fields: Any) -> dict[str, Any]:
    """cart_updated properties with (sku, price, quantity) items."""
    return {
        "cart_id": cart_id,
        "items": [{"sku": sku, "name": f"Item {sku}", "price": price, "quantity": qty} for sku, price, qty in items],
        **fields,
    }


def iso(when: datetime) -> str:
    """An ISO 8601 timestamp."""
    return when.isoformat()


def make_coupon(session: Session, store: Store, contact: Contact, now: datetime, valid_days: int = 14) -> Coupon:
    """A single-use coupon issued with a (hand-made) win-back message to `contact`."""
    winback = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
    assert winback is not None
    enrollment = Enrollment(
        store_id=store.id, campaign_id=winback.id, contact_id=contact.id, subject_key=f"lapse:{now.isoformat()}",
        anchor_at=now, entered_at=now,
    )
    session.add(enrollment)
    session.flush()
    message = Message(
        store_id=store.id, campaign_id=winback.id, enrollment_id=enrollment.id, contact_id=contact.id,
        step_index=1, status="sent", due_at=now, sent_at=now, created_at=now,
    )
    session.add(message)
    session.flush()
    issue_coupons(session, [CouponRequest(message, 10, valid_days, store.coupon_prefix)], now)
    coupon = session.scalar(select(Coupon).where(Coupon.message_id == message.id))
    assert coupon is not None
    return coupon


@contextmanager
def statements_run(bind: Connection | Engine) -> Iterator[list[str]]:
    """The SQL statements sent through `bind` inside the block (an executemany counts once), savepoints left out."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            seen.append(statement)

    event.listen(bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", record)
