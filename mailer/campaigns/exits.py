"""Exit conditions: an order ends a lapse (`returned`) and converts its cart's reminders (`converted`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from mailer.models import Campaign, Cart, Enrollment, Message, Order


def exit_enrollments(session: Session, enrollment_ids: list[int], reason: str, now: datetime) -> int:
    """Exit these active enrollments for `reason` and skip their planned messages; returns how many."""
    if not enrollment_ids:
        return 0
    session.execute(
        update(Message).where(Message.enrollment_id.in_(enrollment_ids), Message.status == "planned")
        .values(status="skipped", skip_reason=reason).execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Enrollment).where(Enrollment.id.in_(enrollment_ids), Enrollment.status == "active")
        .values(status="exited", exit_reason=reason, exited_at=now).execution_options(synchronize_session=False)
    )
    return max(result.rowcount, 0)


def on_order(session: Session, order: Order, now: datetime) -> None:
    """Apply a new order's exits at once: the contact's lapse ends, the cart it converts stops."""
    lapses = session.scalars(
        select(Enrollment.id)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(
            Enrollment.contact_id == order.contact_id, Enrollment.status == "active",
            Campaign.kind == "winback", Enrollment.anchor_at < order.placed_at,
        )
    )
    exit_enrollments(session, list(lapses), "returned", now)
    converted_carts = (
        select(Enrollment.id)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .join(Cart, Cart.id == Enrollment.cart_id)
        .where(Enrollment.contact_id == order.contact_id, Enrollment.status == "active", Campaign.kind == "abandoned_cart")
    )
    if order.cart_id is not None:
        converted_carts = converted_carts.where(Enrollment.cart_id == order.cart_id)
    else:
        # No cart named: any order after the cart's last activity converts it.
        converted_carts = converted_carts.where(Cart.last_activity_at < order.placed_at)
    exit_enrollments(session, list(session.scalars(converted_carts)), "converted", now)
    session.flush()


def converted_or_emptied_carts(session: Session, store_id: int, now: datetime) -> dict[str, int]:
    """The periodic sweep of cart exits (for orders that arrived without passing through `on_order`)."""
    base = (
        select(Enrollment.id, Cart.status)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .join(Cart, Cart.id == Enrollment.cart_id)
        .where(Enrollment.store_id == store_id, Enrollment.status == "active", Campaign.kind == "abandoned_cart")
    )
    later_order = select(Order.id).where(
        Order.contact_id == Enrollment.contact_id,
        or_(Order.cart_id == Cart.id, and_(Order.cart_id.is_(None), Order.placed_at > Cart.last_activity_at)),
    ).exists()
    converted = [row.id for row in session.execute(base.where(or_(Cart.status == "converted", later_order)))]
    emptied = [row.id for row in session.execute(base.where(Cart.status == "emptied"))]
    emptied = [e for e in emptied if e not in set(converted)]
    return {
        "cart_converted": exit_enrollments(session, converted, "converted", now),
        "cart_emptied": exit_enrollments(session, emptied, "emptied", now),
    }


def complete_finished_sequences(session: Session, store_id: int, now: datetime) -> int:
    """Mark cart enrollments whose every message is done (sent, skipped or failed) as completed.

    Win-back enrollments stay active for their whole lapse: their next tier's email is planned later.
    """
    cart_campaigns = select(Campaign.id).where(Campaign.store_id == store_id, Campaign.kind == "abandoned_cart")
    pending = select(Message.id).where(Message.enrollment_id == Enrollment.id, Message.status.in_(("planned", "sending")))
    result = session.execute(
        update(Enrollment)
        .where(
            Enrollment.store_id == store_id, Enrollment.status == "active",
            Enrollment.campaign_id.in_(cart_campaigns), ~pending.exists(),
        )
        .values(status="completed", exited_at=now)
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount, 0)
