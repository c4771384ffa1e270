"""Credit each order to at most one message: its coupon's, else the last human click, else open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import Coupon, Message, Order, Store, TrackingEvent


@dataclass(frozen=True)
class Touch:
    """A person's open or click of one of our messages."""

    message_id: int
    kind: str  # open | click
    at: datetime


@dataclass(frozen=True)
class Credit:
    """The message an order is credited to, and by which rule."""

    message_id: int
    rule: str  # coupon | click | open


def choose_credit(placed_at: datetime, coupon_message_id: int | None, touches: list[Touch], window: timedelta) -> Credit | None:
    """DESIGN §3: the redeemed coupon's message; else the last click, else the last open, in the window.

    Only touches in `[placed_at − window, placed_at]` count; machine touches never reach this function.
    """
    if coupon_message_id is not None:
        return Credit(coupon_message_id, "coupon")
    in_window = [t for t in touches if placed_at - window <= t.at <= placed_at]
    for kind in ("click", "open"):
        candidates = [t for t in in_window if t.kind == kind]
        if candidates:
            last = max(candidates, key=lambda t: (t.at, t.message_id))
            return Credit(last.message_id, kind)
    return None


def attribute_order(session: Session, order: Order, now: datetime) -> Credit | None:
    """Work out and store the order's credit (an order hook; flushes)."""
    store = session.get(Store, order.store_id)
    if store is None:
        return None
    window = timedelta(days=float(store.setting("attribution_window_days")))
    coupon_message_id = session.scalar(
        select(Coupon.message_id).where(Coupon.store_id == order.store_id, Coupon.order_id == order.id)
    )
    rows = session.execute(
        select(TrackingEvent.message_id, TrackingEvent.kind, TrackingEvent.occurred_at)
        .join(Message, Message.id == TrackingEvent.message_id)
        .where(
            TrackingEvent.contact_id == order.contact_id,
            TrackingEvent.kind.in_(("open", "click")),
            TrackingEvent.machine.is_(False),
            TrackingEvent.occurred_at >= order.placed_at - window,
            TrackingEvent.occurred_at <= order.placed_at,
        )
    )
    credit = choose_credit(order.placed_at, coupon_message_id, [Touch(*row) for row in rows], window)
    order.attributed_message_id = credit.message_id if credit else None
    order.attribution = credit.rule if credit else None
    session.flush()
    return credit
