"""The report: metrics per store, campaign, step and tier over a date range, and the holdout lift."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from mailer.models import Campaign, Coupon, Enrollment, Message, Order, Store, TrackingEvent
from mailer.reports.metrics import (
    Counts,
    HoldoutEntry,
    discount_given,
    holdout_outcomes,
    lift,
    metrics,
)
from mailer.reports.reasons import reasons_report
from mailer.scheduling.planner import zone
from mailer.segments.queries import store_thresholds


@dataclass(frozen=True)
class _Sent:
    campaign_key: str
    step_index: int
    tier: int | None
    contact_id: int
    delivered: bool


def _range(store: Store, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the store's time zone, as UTC instants."""
    tz = zone(store.timezone)
    return (
        datetime.combine(start, time(0), tzinfo=tz).astimezone(zone("UTC")),
        datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz).astimezone(zone("UTC")),
    )


def _cohort(store: Store, since: datetime, until: datetime) -> Select[tuple[int]]:
    # The ids of the emails sent in the range, as a subquery: a wave's 100k ids as a list would
    # pass the bound-parameter limit (65,535 on PostgreSQL, 32,766 on SQLite as usually built).
    return select(Message.id).where(Message.store_id == store.id, Message.sent_at >= since, Message.sent_at < until)


def _sent_messages(session: Session, store: Store, since: datetime, until: datetime) -> dict[int, _Sent]:
    # Handed to the SMTP server in the range: delivered, or refused for good (a bounce).
    rows = session.execute(
        select(Message.id, Campaign.key, Message.step_index, Campaign.kind, Message.contact_id, Message.status)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.store_id == store.id, Message.sent_at >= since, Message.sent_at < until,
            Message.status.in_(("sent", "failed")),
        )
    )
    found = {}
    for message_id, key, step_index, kind, contact_id, status in rows:
        tier = step_index if kind == "winback" else None
        found[message_id] = _Sent(key, step_index, tier, contact_id, status == "sent")
    if found:
        bounced = set(session.scalars(
            select(TrackingEvent.message_id).where(TrackingEvent.store_id == store.id, TrackingEvent.kind == "bounce",
                                                   TrackingEvent.message_id.in_(_cohort(store, since, until)))
        ))
        found = {mid: sent for mid, sent in found.items() if sent.delivered or mid in bounced}
    return found


def _engagement(session: Session, store: Store, since: datetime, until: datetime) -> dict[int, set[str]]:
    """Per message, which of open / open_machine / click / unsubscribe happened (unique per message)."""
    rows = session.execute(
        select(TrackingEvent.message_id, TrackingEvent.kind, TrackingEvent.machine)
        .where(TrackingEvent.store_id == store.id, TrackingEvent.message_id.in_(_cohort(store, since, until)))
        .group_by(TrackingEvent.message_id, TrackingEvent.kind, TrackingEvent.machine)
    )
    seen: dict[int, set[str]] = defaultdict(set)
    for message_id, kind, machine in rows:
        seen[message_id].add(f"{kind}_machine" if machine else kind)
    return seen


def _conversions(session: Session, store: Store, sent: dict[int, _Sent], since: datetime, until: datetime) -> list[tuple[int, int, Decimal, Decimal]]:
    """(message, contact, revenue, discount) for every order credited to one of the `sent` messages."""
    if not sent:
        return []
    # Matched by the range's subquery; what `sent` leaves out (failed, never bounced) is dropped here.
    rows = session.execute(
        select(Order.attributed_message_id, Order.contact_id, Order.total, Coupon.percent_off)
        .outerjoin(Coupon, and_(Coupon.order_id == Order.id, Coupon.message_id == Order.attributed_message_id))
        .where(Order.store_id == store.id, Order.attributed_message_id.in_(_cohort(store, since, until)))
    )
    return [(mid, cid, total, discount_given(total, percent or 0)) for mid, cid, total, percent in rows if mid in sent]


def _add(counts: Counts, sent: _Sent, seen: set[str]) -> None:
    counts.sent += 1
    if not sent.delivered:
        counts.bounced += 1
        return
    counts.delivered += 1
    counts.recipients.add(sent.contact_id)
    counts.opened += "open" in seen
    counts.opened_machine += "open_machine" in seen and "open" not in seen
    counts.clicked += "click" in seen
    counts.unsubscribed += "unsubscribe" in seen


def _holdout(session: Session, store: Store, since: datetime, until: datetime, window: timedelta, cost_per_email: Decimal) -> dict[str, object] | None:
    """Treated vs control for enrollments entered in the range of campaigns that hold some out.

    Both arms are watched the same way: an order by the contact after entering, within the
    sequence's length plus the attribution window, converts the enrollment.
    """
    campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.store_id == store.id))}
    enrollments = session.execute(
        select(Enrollment.id, Enrollment.campaign_id, Enrollment.contact_id, Enrollment.group, Enrollment.entered_at)
        .where(Enrollment.store_id == store.id, Enrollment.entered_at >= since, Enrollment.entered_at < until)
    ).all()
    tested = {cid for _, cid, _, group, _ in enrollments if group == "control"}
    if not tested:
        return None
    horizons = {
        campaign_id: max((timedelta(minutes=s.delay_minutes + s.window_minutes) for s in campaigns[campaign_id].steps),
                         default=timedelta(0)) + window
        for campaign_id in tested
    }
    entries = [
        HoldoutEntry(group, contact_id, entered_at, horizons[campaign_id])
        for _, campaign_id, contact_id, group, entered_at in enrollments if campaign_id in tested
    ]
    # Subqueries rather than lists of ids (see _cohort): a wave is 100k enrollments.
    watched = (Enrollment.store_id == store.id, Enrollment.entered_at >= since, Enrollment.entered_at < until,
               Enrollment.campaign_id.in_(tested))
    treated_ids = select(Enrollment.id).where(*watched, Enrollment.group == "treatment")
    # Every order the watched contacts placed while any of them was watched, in one query.
    orders: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for contact_id, placed_at, total in session.execute(
        select(Order.contact_id, Order.placed_at, Order.total)
        .where(Order.store_id == store.id, Order.placed_at > since, Order.placed_at <= until + max(horizons.values()),
               Order.contact_id.in_(select(Enrollment.contact_id).where(*watched)))
        .order_by(Order.contact_id, Order.placed_at)
    ):
        orders[contact_id].append((placed_at, Decimal(total)))
    outcomes = holdout_outcomes(entries, orders)
    sent_to_treated = session.scalar(
        select(func.count(Message.id)).where(Message.enrollment_id.in_(treated_ids), Message.status.in_(("sent", "failed")))
    )
    discounts = sum(
        (discount_given(total, percent) for total, percent in session.execute(
            select(Order.total, Coupon.percent_off).join(Coupon, Coupon.order_id == Order.id)
            .join(Message, Message.id == Coupon.message_id).where(Message.enrollment_id.in_(treated_ids))
        )),
        Decimal("0"),
    )
    cost = cost_per_email * (sent_to_treated or 0) + discounts
    result: dict[str, object] = {"campaigns": sorted(campaigns[c].key for c in tested),
                                 "cost": float(cost.quantize(Decimal("0.01")))}
    result.update(lift(outcomes["treatment"], outcomes["control"], cost))
    return result


def build_report(session: Session, store: Store, start: date, end: date) -> dict[str, object]:
    """The report of `mailer report --json` and `GET /api/v1/report` (DESIGN §4)."""
    since, until = _range(store, start, end)
    cost_per_email = Decimal(str(store.setting("cost_per_email")))
    window_days = store.setting("attribution_window_days")
    sent = _sent_messages(session, store, since, until)
    seen = _engagement(session, store, since, until)

    totals = Counts()
    by_campaign: dict[str, Counts] = defaultdict(Counts)
    by_step: dict[tuple[str, int], Counts] = defaultdict(Counts)
    by_tier: dict[int, Counts] = defaultdict(Counts)
    for message_id, message in sent.items():
        slices = [totals, by_campaign[message.campaign_key], by_step[(message.campaign_key, message.step_index)]]
        if message.tier is not None:
            slices.append(by_tier[message.tier])
        for counts in slices:
            _add(counts, message, seen.get(message_id, set()))
    for message_id, contact_id, revenue, discount in _conversions(session, store, sent, since, until):
        message = sent[message_id]
        slices = [totals, by_campaign[message.campaign_key], by_step[(message.campaign_key, message.step_index)]]
        if message.tier is not None:
            slices.append(by_tier[message.tier])
        for counts in slices:
            counts.converted.add(contact_id)
            counts.revenue += revenue
            counts.discounts += discount

    campaigns = session.scalars(select(Campaign).where(Campaign.store_id == store.id).order_by(Campaign.priority.desc(), Campaign.key))
    thresholds = store_thresholds(store)
    return {
        "window_days": window_days,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": store.currency,
        "totals": metrics(totals, cost_per_email),
        "campaigns": [
            {
                "key": campaign.key,
                "name": campaign.name,
                "metrics": metrics(by_campaign[campaign.key], cost_per_email),
                "steps": [
                    {"index": step.index, "metrics": metrics(by_step[(campaign.key, step.index)], cost_per_email)}
                    for step in campaign.steps
                ],
            }
            for campaign in campaigns
        ],
        "tiers": {str(threshold): metrics(by_tier[index], cost_per_email) for index, threshold in enumerate(thresholds, start=1)},
        "holdout": _holdout(session, store, since, until, timedelta(days=float(window_days)), cost_per_email),
        "reasons": reasons_report(session, store, since, until),
    }


def default_range(now: datetime, days: int = 30) -> tuple[date, date]:
    """The last `days` days up to today, the report's default."""
    today = now.date()
    return today - timedelta(days=days - 1), today



