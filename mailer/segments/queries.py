"""Named, set-based queries that apply the lifecycle rules in SQL (never a loop over contacts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mailer.models import Contact, Store
from mailer.segments.lifecycle import check_thresholds, tier_cutoffs


def tier_column(now: datetime, thresholds: Sequence[int]) -> ColumnElement[int]:
    """SQL for a contact's tier at `now`: 0 = active, 1..n = the thresholds it passed."""
    cutoffs = tier_cutoffs(now, thresholds)
    whens = [(Contact.last_order_at <= cutoff, literal(index)) for index, cutoff in reversed(list(enumerate(cutoffs, start=1)))]
    return case(*whens, else_=literal(0))


def audience_column() -> ColumnElement[str]:
    """SQL for a contact's audience: prospect, one_time or repeat."""
    return case(
        (Contact.orders_count <= 0, literal("prospect")),
        (Contact.orders_count == 1, literal("one_time")),
        else_=literal("repeat"),
    )


def store_thresholds(store: Store) -> list[int]:
    """The store's tier thresholds, validated."""
    return check_thresholds(store.setting("tier_thresholds"))


def segment_counts(session: Session, store: Store, now: datetime) -> dict[str, object]:
    """Contacts per audience and tier at `now`, shaped as `mailer segment --json` prints them."""
    thresholds = store_thresholds(store)
    tier = tier_column(now, thresholds)
    audience = audience_column()
    rows = session.execute(
        select(audience, tier, func.count())
        .where(Contact.store_id == store.id)
        .group_by(audience, tier)
    ).all()
    keys = ["active", *[str(t) for t in thresholds]]
    result: dict[str, object] = {
        "one_time": dict.fromkeys(keys, 0),
        "repeat": dict.fromkeys(keys, 0),
        "prospects": 0,
    }
    for audience_value, tier_value, count in rows:
        if audience_value == "prospect":
            result["prospects"] = int(result["prospects"]) + int(count)  # type: ignore[call-overload]
        else:
            bucket = result[audience_value]
            assert isinstance(bucket, dict)
            bucket[keys[int(tier_value)]] += int(count)
    return result


def lapsed_customers(store: Store, now: datetime, audience: str) -> Select[tuple[int, datetime, int]]:
    """(contact id, last order time, tier) of the store's customers in `audience` who passed a tier."""
    thresholds = store_thresholds(store)
    tier = tier_column(now, thresholds)
    conditions = [Contact.store_id == store.id, Contact.last_order_at <= tier_cutoffs(now, thresholds)[0]]
    if audience == "one_time":
        conditions.append(Contact.orders_count == 1)
    elif audience == "repeat":
        conditions.append(Contact.orders_count >= 2)
    else:
        conditions.append(Contact.orders_count >= 1)
    return select(Contact.id, Contact.last_order_at, tier.label("tier")).where(and_(*conditions))
