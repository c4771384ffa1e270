"""The report over time: per day, the emails sent and how many of them were opened, clicked, and what they earned."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.models import Message, Order, Store, TrackingEvent
from mailer.scheduling.planner import zone


@dataclass(frozen=True)
class DailyPoint:
    """One day of the chart: emails sent that day, and of those the opened, clicked and the revenue credited."""

    day: date
    sent: int
    opened: int
    clicked: int
    revenue: Decimal


def _bounds(store: Store, start: date, end: date) -> tuple[datetime, datetime]:
    tz = zone(store.timezone)
    utc = zone("UTC")
    return (
        datetime.combine(start, time(0), tzinfo=tz).astimezone(utc),
        datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz).astimezone(utc),
    )


def daily_series(session: Session, store: Store, start: date, end: date) -> list[DailyPoint]:
    """One point per day from `start` to `end` (the store's time zone), counted by the day each email went out.

    Counting each email on its sending day (a cohort) rather than on the day it was opened
    makes the days add up to the report's totals for the same range: sent counts delivered
    emails and bounces, opened and clicked count human engagement once per email, revenue is
    what the orders credited to those emails paid.
    """
    since, until = _bounds(store, start, end)
    cohort = select(Message.id).where(
        Message.store_id == store.id,
        Message.sent_at >= since,
        Message.sent_at < until,
        Message.status.in_(("sent", "failed")),
    )
    messages = session.execute(
        select(Message.id, Message.sent_at, Message.status).where(Message.id.in_(cohort))
    ).all()
    kinds: dict[int, set[str]] = defaultdict(set)
    for message_id, kind, machine in session.execute(
        select(TrackingEvent.message_id, TrackingEvent.kind, TrackingEvent.machine)
        .where(
            TrackingEvent.store_id == store.id,
            TrackingEvent.message_id.in_(cohort),
            TrackingEvent.kind.in_(("open", "click", "bounce")),
        )
        .group_by(TrackingEvent.message_id, TrackingEvent.kind, TrackingEvent.machine)
    ):
        # Machine opens and clicks (privacy proxies, link scanners) are no sign of a person.
        if kind == "bounce" or not machine:
            kinds[message_id].add(kind)
    revenue = dict(
        session.execute(
            select(Order.attributed_message_id, func.sum(Order.total))
            .where(Order.store_id == store.id, Order.attributed_message_id.in_(cohort))
            .group_by(Order.attributed_message_id)
        ).all()
    )

    tz = zone(store.timezone)
    days = (end - start).days + 1
    sent = [0] * days
    opened = [0] * days
    clicked = [0] * days
    earned = [Decimal("0")] * days
    for message_id, sent_at, status in messages:
        seen = kinds.get(message_id, set())
        if status == "failed" and "bounce" not in seen:
            continue  # never reached a server that said no: not sent (as in the report)
        index = (sent_at.astimezone(tz).date() - start).days
        if not 0 <= index < days:
            continue
        sent[index] += 1
        opened[index] += "open" in seen
        clicked[index] += "click" in seen
        earned[index] += Decimal(revenue.get(message_id) or 0)
    return [
        DailyPoint(start + timedelta(days=i), sent[i], opened[i], clicked[i], earned[i].quantize(Decimal("0.01")))
        for i in range(days)
    ]
