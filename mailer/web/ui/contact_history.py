"""One contact's life cycle for the dashboard: orders, carts, events, messages with opens and clicks, tiers over time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import (
    Campaign,
    Cart,
    Contact,
    Enrollment,
    Event,
    Link,
    Message,
    Order,
    Store,
    TrackingEvent,
)
from mailer.rendering.filters import money
from mailer.segments.queries import store_thresholds

MAX_ROWS = 200  # per kind: a page about one person, not an export


@dataclass
class Engagement:
    """What was done with one message, people and machines counted apart."""

    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    machine_clicks: int = 0
    clicked_urls: list[str] = field(default_factory=list)
    unsubscribed: bool = False
    bounced: bool = False


@dataclass(frozen=True)
class Moment:
    """One line of the life-cycle timeline."""

    at: datetime
    kind: str  # contact | order | audience | tier | active | cart | event | enrolled | exited | email | open | click | unsubscribe | bounce
    title: str
    detail: str = ""


@dataclass
class ContactHistory:
    """Everything the contact page shows, newest first."""

    orders: list[Order]
    carts: list[Cart]
    events: list[Event]
    messages: list[tuple[Message, Campaign]]
    engagement: dict[int, Engagement]
    enrollments: list[tuple[Enrollment, Campaign]]
    timeline: list[Moment]
    credited: dict[int, tuple[Message, Campaign]]  # order id → the message it is credited to


def lifecycle_moments(order_times: Sequence[datetime], thresholds: Sequence[int], now: datetime) -> list[Moment]:
    """When the contact changed audience (first and second order) and entered each tier, oldest first.

    A tier is entered `threshold` days after an order when no other order came before then;
    the next order brings the customer back to active.
    """
    moments: list[Moment] = []
    times = sorted(order_times)
    for position, placed in enumerate(times):
        if moments and moments[-1].kind == "tier":
            moments.append(Moment(placed, "active", "Back to active", "ordered again"))
        if position == 0:
            moments.append(Moment(placed, "audience", "Became a one-time buyer"))
        elif position == 1:
            moments.append(Moment(placed, "audience", "Became a repeat buyer"))
        until = times[position + 1] if position + 1 < len(times) else now
        for days in sorted(thresholds):
            entered = placed + timedelta(days=days)
            if entered < until and entered <= now:
                moments.append(Moment(entered, "tier", f"Entered the {days}-day tier", f"{days} days since the last order"))
    return moments


def _engagement(session: Session, store: Store, contact: Contact) -> dict[int, Engagement]:
    found: dict[int, Engagement] = defaultdict(Engagement)
    rows = session.execute(
        select(TrackingEvent, Link.url)
        .outerjoin(Link, Link.id == TrackingEvent.link_id)
        .where(TrackingEvent.store_id == store.id, TrackingEvent.contact_id == contact.id)
    )
    for event, url in rows:
        seen = found[event.message_id]
        if event.kind == "open":
            if event.machine:
                seen.machine_opens += 1
            else:
                seen.opens += 1
        elif event.kind == "click":
            if event.machine:
                seen.machine_clicks += 1
            else:
                seen.clicks += 1
                if url and url not in seen.clicked_urls:
                    seen.clicked_urls.append(url)
        elif event.kind == "unsubscribe":
            seen.unsubscribed = True
        elif event.kind == "bounce":
            seen.bounced = True
    return dict(found)


def _tracking_moments(session: Session, store: Store, contact: Contact) -> list[Moment]:
    moments = []
    rows = session.execute(
        select(TrackingEvent, Link.url, Message.subject)
        .outerjoin(Link, Link.id == TrackingEvent.link_id)
        .join(Message, Message.id == TrackingEvent.message_id)
        .where(TrackingEvent.store_id == store.id, TrackingEvent.contact_id == contact.id)
        .order_by(TrackingEvent.occurred_at.desc())
        .limit(MAX_ROWS)
    )
    for event, url, subject in rows:
        who = f"machine ({event.machine_reason or 'automated'})" if event.machine else "person"
        if event.kind == "open":
            moments.append(Moment(event.occurred_at, "open", f"Opened “{subject or 'an email'}”", f"by a {who}"))
        elif event.kind == "click":
            moments.append(Moment(event.occurred_at, "click", f"Clicked in “{subject or 'an email'}”", f"{url or ''} · by a {who}"))
        elif event.kind == "unsubscribe":
            moments.append(Moment(event.occurred_at, "unsubscribe", "Unsubscribed", f"from “{subject or 'an email'}”"))
        elif event.kind in ("bounce", "complaint"):
            moments.append(Moment(event.occurred_at, "bounce", "Bounced" if event.kind == "bounce" else "Complained", subject or ""))
    return moments


def _event_detail(event: Event) -> str:
    properties: dict[str, Any] = event.properties or {}
    if event.name == "product_viewed":
        return str(properties.get("name") or properties.get("sku") or "")
    if event.name == "cart_updated":
        items = properties.get("items") or []
        return f"{len(items)} item(s), {properties.get('value', '')} {properties.get('currency', '')}".strip()
    if event.name == "order_placed":
        return f"order {properties.get('order_id', '')}, {properties.get('total', '')} {properties.get('currency', '')}".strip()
    return ""


def contact_history(session: Session, store: Store, contact: Contact, now: datetime) -> ContactHistory:
    """The contact's rows (each kind newest first, at most MAX_ROWS) and the merged timeline."""
    orders = list(session.scalars(
        select(Order).where(Order.store_id == store.id, Order.contact_id == contact.id)
        .order_by(Order.placed_at.desc()).limit(MAX_ROWS)
    ))
    carts = list(session.scalars(
        select(Cart).where(Cart.store_id == store.id, Cart.contact_id == contact.id)
        .order_by(Cart.last_activity_at.desc()).limit(MAX_ROWS)
    ))
    events = list(session.scalars(
        select(Event).where(Event.store_id == store.id, Event.contact_id == contact.id)
        .order_by(Event.occurred_at.desc()).limit(MAX_ROWS)
    ))
    messages = [(message, campaign) for message, campaign in session.execute(
        select(Message, Campaign).join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.store_id == store.id, Message.contact_id == contact.id)
        .order_by(Message.due_at.desc(), Message.id.desc()).limit(MAX_ROWS)
    )]
    enrollments = [(enrollment, campaign) for enrollment, campaign in session.execute(
        select(Enrollment, Campaign).join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.store_id == store.id, Enrollment.contact_id == contact.id)
        .order_by(Enrollment.entered_at.desc()).limit(MAX_ROWS)
    )]
    by_id = {message.id: (message, campaign) for message, campaign in messages}
    credited = {order.id: by_id[order.attributed_message_id] for order in orders if order.attributed_message_id in by_id}

    timeline: list[Moment] = [Moment(contact.created_at, "contact", "First seen", contact.email)]
    all_order_times = list(session.scalars(
        select(Order.placed_at).where(Order.store_id == store.id, Order.contact_id == contact.id)
    ))
    timeline += lifecycle_moments(all_order_times, store_thresholds(store), now)
    for order in orders:
        how = f", credited to an email by {order.attribution}" if order.attribution else ""
        coupon = f", coupon {order.coupon_code}" if order.coupon_code else ""
        timeline.append(Moment(order.placed_at, "order", f"Ordered {money(order.total, order.currency)}", f"order {order.external_id}{coupon}{how}"))
    for cart in carts:
        if cart.abandoned_at is not None:
            items = f"{len(cart.items)} item{'s' if len(cart.items) != 1 else ''}"
            timeline.append(Moment(cart.abandoned_at, "cart", "Abandoned a cart", f"{items}, {money(cart.value, cart.currency)}"))
    for event in events:
        timeline.append(Moment(event.occurred_at, "event", (event.name or event.type).replace("_", " ").capitalize(), _event_detail(event)))
    for enrollment, campaign in enrollments:
        group = " (control group: nothing is sent)" if enrollment.group == "control" else ""
        about = f"tier {enrollment.tier}" if enrollment.tier else ("an abandoned cart" if enrollment.cart_id else "")
        timeline.append(Moment(enrollment.entered_at, "enrolled", f"Entered {campaign.name}{group}", about))
        if enrollment.exited_at is not None:
            timeline.append(Moment(enrollment.exited_at, "exited", f"Left {campaign.name}", enrollment.exit_reason or ""))
    for message, campaign in messages:
        if message.sent_at is not None:
            timeline.append(Moment(message.sent_at, "email", f"Sent “{message.subject or campaign.name}”", f"{campaign.name}, step {message.step_index}"))
    timeline += _tracking_moments(session, store, contact)
    if contact.unsubscribed_at is not None and not any(m.kind == "unsubscribe" for m in timeline):
        timeline.append(Moment(contact.unsubscribed_at, "unsubscribe", "Unsubscribed"))
    timeline.sort(key=lambda moment: moment.at, reverse=True)
    return ContactHistory(
        orders=orders, carts=carts, events=events, messages=messages, engagement=_engagement(session, store, contact),
        enrollments=enrollments, timeline=timeline[: MAX_ROWS * 2], credited=credited,
    )
