"""The win-back stage: enroll lapsed customers, plan their current tier's email, end returned lapses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from mailer.campaigns.enroll import REFRESH_STATISTICS_AFTER, outbox_row
from mailer.campaigns.exits import exit_enrollments
from mailer.db import insert_ignoring_conflicts, refresh_statistics
from mailer.models import Campaign, Contact, Enrollment, Message, Store
from mailer.scheduling.planner import holdout_group
from mailer.segments.queries import lapsed_customers, store_thresholds, tier_column

CHUNK = 5000


def lapse_key(last_order_at: datetime) -> str:
    """A lapse is named by the order that started it: a new order starts a new lapse."""
    return f"lapse:{last_order_at.isoformat()}"


def _winback_campaign(session: Session, store: Store) -> Campaign | None:
    return session.scalar(
        select(Campaign).where(Campaign.store_id == store.id, Campaign.kind == "winback", Campaign.enabled.is_(True))
        .order_by(Campaign.priority.desc(), Campaign.id).limit(1)
    )


def end_returned_lapses(session: Session, store: Store, now: datetime) -> int:
    """Exit as `returned` every active win-back enrollment whose customer has ordered since."""
    returned = (
        select(Enrollment.id)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .join(Contact, Contact.id == Enrollment.contact_id)
        .where(
            Enrollment.store_id == store.id, Enrollment.status == "active", Campaign.kind == "winback",
            Contact.last_order_at > Enrollment.anchor_at,
        )
    )
    return exit_enrollments(session, list(session.scalars(returned)), "returned", now)


def _busy_with_a_cart(contact_id) -> object:  # type: ignore[no-untyped-def]
    # Cart reminders take precedence: no win-back while a cart sequence is running for the contact.
    cart_campaign = aliased(Campaign)
    return exists().where(
        Enrollment.contact_id == contact_id,
        Enrollment.status == "active",
        Enrollment.campaign_id == cart_campaign.id,
        cart_campaign.kind == "abandoned_cart",
    )


def enroll_new_lapses(session: Session, store: Store, campaign: Campaign, now: datetime) -> int:
    """Enroll every lapsed customer in the audience who has no enrollment for this lapse yet."""
    candidates = lapsed_customers(store, now, campaign.audience).where(
        Contact.unsubscribed_at.is_(None),
        ~exists().where(
            Enrollment.campaign_id == campaign.id,
            Enrollment.contact_id == Contact.id,
            Enrollment.anchor_at == Contact.last_order_at,
        ),
        ~_busy_with_a_cart(Contact.id),
    )
    created = 0
    rows = session.execute(candidates).all()
    for start in range(0, len(rows), CHUNK):
        batch = []
        for contact_id, last_order_at, tier in rows[start:start + CHUNK]:
            key = lapse_key(last_order_at)
            batch.append({
                "store_id": store.id, "campaign_id": campaign.id, "contact_id": contact_id, "subject_key": key,
                "cart_id": None, "tier": tier,
                "group": holdout_group(store.id, campaign.key, contact_id, key, campaign.holdout_percent),
                "status": "active", "anchor_at": last_order_at, "entered_at": now,
            })
        created += insert_ignoring_conflicts(session, Enrollment, batch)
    return created


def plan_current_tiers(session: Session, store: Store, campaign: Campaign, now: datetime) -> int:
    """Plan, once per lapse, the email of the tier each enrolled customer is in now (never a skipped one)."""
    tier = tier_column(now, store_thresholds(store))
    steps_by_tier = {step.tier: step for step in campaign.steps if step.tier is not None}
    due = (
        select(Enrollment.id, Enrollment.contact_id, Enrollment.group, tier)
        .join(Contact, Contact.id == Enrollment.contact_id)
        .where(
            Enrollment.campaign_id == campaign.id,
            Enrollment.status == "active",
            Enrollment.anchor_at == Contact.last_order_at,
            tier >= 1,
            Contact.unsubscribed_at.is_(None),
            ~_busy_with_a_cart(Contact.id),
            ~exists().where(and_(Message.enrollment_id == Enrollment.id, Message.step_index == tier)),
        )
    )
    planned = 0
    rows = []
    for enrollment_id, contact_id, group, current_tier in session.execute(due).all():
        step = steps_by_tier.get(int(current_tier))
        if step is None:
            continue
        # Sent at the tick that sees the customer in the tier (or first sees them, for imports).
        rows.append(outbox_row(store.id, campaign.id, enrollment_id, contact_id, group, step, now, now))
        if len(rows) == CHUNK:
            planned += insert_ignoring_conflicts(session, Message, rows)
            rows = []
    return planned + insert_ignoring_conflicts(session, Message, rows)


def winback_stage(session: Session, store: Store, now: datetime) -> dict[str, int]:
    """The engine stage: end returned lapses, enroll new ones, plan the current tier's email."""
    campaign = _winback_campaign(session, store)
    if campaign is None:
        return {}
    returned = end_returned_lapses(session, store, now)
    enrolled = enroll_new_lapses(session, store, campaign, now)
    planned = plan_current_tiers(session, store, campaign, now)
    session.flush()
    if enrolled + planned >= REFRESH_STATISTICS_AFTER:
        # A wave: the next queries over these tables (this tick's send, the next tick) must not be
        # planned with the row counts from before it.
        refresh_statistics(session, "enrollments", "messages")
    return {"winback_returned": returned, "winback_enrolled": enrolled, "winback_planned": planned}
