"""`GET` and `DELETE /api/v1/contacts/<email>`: a contact's profile for the store, and erasure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.campaigns.tasks import close_task
from mailer.clock import utcnow
from mailer.errors import NotFound, ValidationError
from mailer.ingest.erasure import erase_contact
from mailer.ingest.identity import find_contact, normalize_email
from mailer.ingest.payload import json_object
from mailer.models import (
    Campaign,
    Cart,
    Contact,
    ManagerTask,
    Message,
    Order,
    Store,
)
from mailer.segments.lifecycle import audience_of, days_since, tier_for_days
from mailer.segments.queries import store_thresholds
from mailer.tracking.suppressions import is_suppressed
from mailer.web.api.auth import secret_key_store
from mailer.web.api.body import read_body
from mailer.web.api.ratelimit import check_rate
from mailer.web.database import db_session

bp = Blueprint("api_contacts", __name__, url_prefix="/api/v1")

MAX_CARTS = 50
MAX_MESSAGES = 200


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def tier_of(contact: Contact, store: Store, now: datetime) -> tuple[str | None, int | None]:
    """The contact's lifecycle tier at `now` named like `mailer segment` keys (`active`, `90`, …) and its days."""
    if contact.last_order_at is None:
        return None, None
    thresholds = sorted(store_thresholds(store))
    days = days_since(now, contact.last_order_at)
    tier = tier_for_days(days, thresholds)
    return ("active" if tier == 0 else str(thresholds[tier - 1])), days


def contact_profile(session: Session, store: Store, contact: Contact, now: datetime) -> dict[str, Any]:
    """Everything the store may read about one of its contacts, as JSON-safe data."""
    tier, days = tier_of(contact, store, now)
    last_order = session.scalar(
        select(Order).where(Order.store_id == store.id, Order.contact_id == contact.id)
        .order_by(Order.placed_at.desc(), Order.id.desc()).limit(1)
    )
    carts = session.scalars(
        select(Cart).where(Cart.store_id == store.id, Cart.contact_id == contact.id)
        .order_by(Cart.last_activity_at.desc()).limit(MAX_CARTS)
    )
    messages = session.execute(
        select(Message, Campaign.key)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.store_id == store.id, Message.contact_id == contact.id)
        .order_by(Message.due_at.desc(), Message.id.desc()).limit(MAX_MESSAGES)
    )
    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "timezone": contact.timezone,
        "created_at": _time(contact.created_at),
        "audience": audience_of(contact.orders_count),
        "tier": tier,
        "days_since_last_order": days,
        "consent": {"status": contact.consent, "source": contact.consent_source, "at": _time(contact.consent_at)},
        "unsubscribed_at": _time(contact.unsubscribed_at),
        "reason": None if contact.reason is None else {"reason": contact.reason, "at": _time(contact.reason_at)},
        "suppressed": is_suppressed(session, store.id, contact.email),
        "orders_count": contact.orders_count,
        "total_spent": _money(contact.total_spent),
        "first_order_at": _time(contact.first_order_at),
        "last_order": None if last_order is None else {
            "order_id": last_order.external_id,
            "placed_at": _time(last_order.placed_at),
            "total": _money(last_order.total),
            "currency": last_order.currency,
            "coupon": last_order.coupon_code,
            "coupon_rejected": last_order.coupon_rejected,
        },
        "carts": [
            {
                "cart_id": cart.external_id,
                "status": cart.status,
                "currency": cart.currency,
                "value": _money(cart.value),
                "restore_url": cart.restore_url,
                "last_activity_at": _time(cart.last_activity_at),
                "checkout_started_at": _time(cart.checkout_started_at),
                "abandoned_at": _time(cart.abandoned_at),
                "items": [
                    {
                        "sku": item.sku, "name": item.name, "price": _money(item.price), "quantity": item.quantity,
                        "url": item.url, "image_url": item.image_url,
                    }
                    for item in cart.items
                ],
            }
            for cart in carts
        ],
        "messages": [
            {
                "status": message.status,
                "campaign": campaign_key,
                "step": message.step_index,
                "due_at": _time(message.due_at),
                "sent_at": _time(message.sent_at),
            }
            for message, campaign_key in messages
        ],
        "tasks": [
            {
                "id": task.id, "title": task.title, "status": task.status, "warmth": task.warmth,
                "outcome": task.outcome, "due_at": _time(task.due_at), "repeats": task.repeats,
                "created_at": _time(task.created_at), "closed_at": _time(task.closed_at),
            }
            for task in session.scalars(
                select(ManagerTask).where(ManagerTask.store_id == store.id, ManagerTask.contact_id == contact.id)
                .order_by(ManagerTask.created_at.desc())
            )
        ],
    }


def _contact_or_404(store: Store, email: str) -> Contact:
    try:
        normalized: str | None = normalize_email(email) if email.isprintable() else None
    except ValidationError:
        normalized = None  # not an email: certainly not a contact
    contact = find_contact(db_session(), store.id, normalized) if normalized else None
    if contact is None:
        raise NotFound("no contact with that email in this store")
    return contact


@bp.get("/contacts/<path:email>")
def get_contact(email: str) -> Response:
    """The contact with audience, tier, consent, orders, carts and messages; 404 when unknown."""
    store = secret_key_store()
    check_rate("secret", f"store:{store.id}")
    contact = _contact_or_404(store, email)
    return jsonify(contact_profile(db_session(), store, contact, utcnow()))


@bp.post("/tasks/<int:task_id>/close")
def close_manager_task(task_id: int) -> Response:
    """`{"outcome": returned|declined|unreachable}` closes one of the store's manager tasks."""
    store = secret_key_store()
    check_rate("secret", f"store:{store.id}")
    data = json_object(read_body(), frozenset({"outcome"}))
    task = db_session().scalar(select(ManagerTask).where(ManagerTask.id == task_id, ManagerTask.store_id == store.id))
    if task is None:
        raise NotFound("no such task")
    close_task(db_session(), task, str(data.get("outcome")), utcnow())
    return jsonify({"id": task.id, "status": task.status, "outcome": task.outcome})


@bp.delete("/contacts/<path:email>")
def delete_contact(email: str) -> tuple[str, int]:
    """Erase the contact (right to erasure); 204."""
    store = secret_key_store()
    check_rate("secret", f"store:{store.id}")
    contact = _contact_or_404(store, email)
    erase_contact(db_session(), contact, utcnow(), source="api")
    return "", 204
