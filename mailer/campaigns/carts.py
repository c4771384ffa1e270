"""The abandoned-cart stage: find carts gone quiet, enroll their contacts, plan the three reminders."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from mailer.campaigns.enroll import REFRESH_STATISTICS_AFTER, enroll, plan_steps
from mailer.campaigns.exits import complete_finished_sequences, converted_or_emptied_carts
from mailer.db import refresh_statistics
from mailer.models import Campaign, Cart, CartItem, Contact, Enrollment, Order, Store

# A cart older than the whole sequence is stale: reminding about it would read as a mistake.
STALE_AFTER = timedelta(days=7)


def abandoned_at(last_activity_at: datetime, abandon_after_minutes: int) -> datetime:
    """The instant a cart counts as abandoned: its last activity plus the quiet period."""
    return last_activity_at + timedelta(minutes=abandon_after_minutes)


def cart_key(cart_id: int, abandoned: datetime) -> str:
    """An abandonment is named by its cart and when it happened: a cart can be abandoned again later."""
    return f"cart:{cart_id}:{abandoned.isoformat()}"


def _cart_campaign(session: Session, store: Store) -> Campaign | None:
    return session.scalar(
        select(Campaign).where(Campaign.store_id == store.id, Campaign.kind == "abandoned_cart", Campaign.enabled.is_(True))
        .order_by(Campaign.priority.desc(), Campaign.id).limit(1)
    )


def abandoned_carts(store: Store, now: datetime):  # type: ignore[no-untyped-def]
    """Carts of known contacts with items, quiet for `abandon_after`, not ordered, not yet enrolled."""
    quiet_since = now - timedelta(minutes=int(store.setting("abandon_after_minutes")))
    return (
        select(Cart)
        .join(Contact, Contact.id == Cart.contact_id)
        .where(
            Cart.store_id == store.id,
            Cart.status == "open",
            Cart.last_activity_at <= quiet_since,
            Cart.last_activity_at > now - STALE_AFTER,
            Contact.unsubscribed_at.is_(None),
            exists().where(CartItem.cart_id == Cart.id),
            # no order for it: none naming the cart, none by the contact since the cart's last activity
            ~exists().where(Order.contact_id == Cart.contact_id, Order.placed_at > Cart.last_activity_at),
            ~exists().where(Order.cart_id == Cart.id),
            # a running sequence keeps its schedule even when the cart is edited
            ~exists().where(Enrollment.cart_id == Cart.id, Enrollment.status == "active"),
        )
        .order_by(Cart.last_activity_at)
    )


def _entered_recently(session: Session, campaign: Campaign, contact_id: int, now: datetime, hours: float) -> bool:
    # A contact re-enters the cart flow at most once per `cart_reentry_hours`.
    return session.scalar(
        select(Enrollment.id).where(
            Enrollment.campaign_id == campaign.id, Enrollment.contact_id == contact_id,
            Enrollment.entered_at > now - timedelta(hours=hours),
        ).limit(1)
    ) is not None


def enroll_abandoned_carts(session: Session, store: Store, campaign: Campaign, now: datetime) -> int:
    """Enroll each newly abandoned cart and plan its three reminders."""
    after = int(store.setting("abandon_after_minutes"))
    reentry_hours = float(store.setting("cart_reentry_hours"))
    enrolled = 0
    for cart in session.scalars(abandoned_carts(store, now)):
        assert cart.contact_id is not None
        when = abandoned_at(cart.last_activity_at, after)
        key = cart_key(cart.id, when)
        if _entered_recently(session, campaign, cart.contact_id, now, reentry_hours):
            continue
        enrollment = enroll(session, campaign=campaign, contact_id=cart.contact_id, subject_key=key, anchor_at=when, now=now, cart_id=cart.id)
        if enrollment is None:
            continue  # this abandonment already had its sequence
        cart.abandoned_at = when
        plan_steps(session, enrollment, campaign.steps, now)
        enrolled += 1
    return enrolled


def cart_stage(session: Session, store: Store, now: datetime) -> dict[str, int]:
    """The engine stage: exits first (converted, emptied), then new abandonments."""
    counts = converted_or_emptied_carts(session, store.id, now)
    counts["cart_completed"] = complete_finished_sequences(session, store.id, now)
    campaign = _cart_campaign(session, store)
    if campaign is not None:
        counts["cart_enrolled"] = enroll_abandoned_carts(session, store, campaign, now)
    session.flush()
    if counts.get("cart_enrolled", 0) * (1 + len(campaign.steps) if campaign else 0) >= REFRESH_STATISTICS_AFTER:
        refresh_statistics(session, "enrollments", "messages")  # see winback_stage
    return counts
