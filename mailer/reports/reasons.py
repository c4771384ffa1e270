"""Why they left, over time: answers by month, quarter, tier and campaign, and who came back."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.models import Campaign, Contact, ContactReason, Order, Store
from mailer.reports.metrics import ratio
from mailer.segments.queries import store_thresholds


def _quarter(when: datetime) -> str:
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


def reasons_report(session: Session, store: Store, since: datetime, until: datetime) -> dict[str, object]:
    """The `"reasons"` part of the report for answers given in `[since, until)`."""
    in_range = (ContactReason.store_id == store.id, ContactReason.created_at >= since, ContactReason.created_at < until)
    rows = session.execute(
        select(ContactReason.contact_id, ContactReason.reason, ContactReason.tier, Campaign.key, ContactReason.created_at)
        .join(Campaign, Campaign.id == ContactReason.campaign_id)
        .where(*in_range)
    ).all()
    thresholds = store_thresholds(store)
    by_reason: Counter[str] = Counter()
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    by_quarter: dict[str, Counter[str]] = defaultdict(Counter)
    by_tier: dict[str, Counter[str]] = defaultdict(Counter)
    by_campaign: dict[str, Counter[str]] = defaultdict(Counter)
    first_answer: dict[tuple[int, str], datetime] = {}
    for contact_id, reason, tier, campaign_key, at in rows:
        by_reason[reason] += 1
        by_month[f"{at:%Y-%m}"][reason] += 1
        by_quarter[_quarter(at)][reason] += 1
        if tier and 1 <= tier <= len(thresholds):
            by_tier[str(thresholds[tier - 1])][reason] += 1
        by_campaign[campaign_key][reason] += 1
        key = (contact_id, reason)
        first_answer[key] = min(at, first_answer.get(key, at))
    # Came back: ordered after giving that answer.
    returned: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    if first_answer:
        last_orders = dict(session.execute(
            select(Order.contact_id, func.max(Order.placed_at))
            .where(Order.contact_id.in_(select(ContactReason.contact_id).where(*in_range)))  # not a list: past the parameter limit
            .group_by(Order.contact_id)
        ).all())
        for (contact_id, reason), at in first_answer.items():
            answered[reason] += 1
            last = last_orders.get(contact_id)
            if last is not None and last > at:
                returned[reason] += 1
    return {
        "total": sum(by_reason.values()),
        "by_reason": dict(by_reason),
        "by_month": {k: dict(v) for k, v in sorted(by_month.items())},
        "by_quarter": {k: dict(v) for k, v in sorted(by_quarter.items())},
        "by_tier": {k: dict(v) for k, v in by_tier.items()},
        "by_campaign": {k: dict(v) for k, v in by_campaign.items()},
        "return_rate": {reason: ratio(returned[reason], answered[reason]) for reason in answered},
        "lost_by_month": lost_by_month(session, store, since, until),
    }


def lost_by_month(session: Session, store: Store, since: datetime, until: datetime) -> dict[str, int]:
    """Customers who became lost (crossed the first tier threshold without ordering) per month."""
    first = timedelta(days=store_thresholds(store)[0])
    rows = session.scalars(
        select(Contact.last_order_at).where(
            Contact.store_id == store.id, Contact.orders_count >= 1,
            Contact.last_order_at >= since - first, Contact.last_order_at < until - first,
        )
    )
    months: Counter[str] = Counter(f"{last + first:%Y-%m}" for last in rows)
    return dict(sorted(months.items()))
