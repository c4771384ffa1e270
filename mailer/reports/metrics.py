"""Pure metric math: rates, cost, ROI, and the holdout lift with its 95 % interval."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal


@dataclass
class Counts:
    """Raw counts for one slice of a report (store, campaign, step or tier)."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    opened: int = 0
    opened_machine: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    recipients: set[int] = field(default_factory=set)
    converted: set[int] = field(default_factory=set)
    revenue: Decimal = Decimal("0")
    discounts: Decimal = Decimal("0")


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator rounded to 4 places; None when there is nothing to divide by."""
    return round(numerator / denominator, 4) if denominator else None


def discount_given(total_paid: Decimal, percent_off: int) -> Decimal:
    """The discount on an order that paid `total_paid` after `percent_off` % off."""
    if percent_off <= 0 or percent_off >= 100:
        return Decimal("0")
    return (total_paid * percent_off / (100 - percent_off)).quantize(Decimal("0.01"))


def metrics(counts: Counts, cost_per_email: Decimal) -> dict[str, object]:
    """The metrics of DESIGN §3 for one slice."""
    cost = (cost_per_email * counts.sent + counts.discounts).quantize(Decimal("0.01"))
    revenue = counts.revenue.quantize(Decimal("0.01"))
    return {
        "sent": counts.sent,
        "delivered": counts.delivered,
        "bounced": counts.bounced,
        "opened": counts.opened,
        "opened_machine": counts.opened_machine,
        "clicked": counts.clicked,
        "unsubscribed": counts.unsubscribed,
        "converted": len(counts.converted),
        "revenue": float(revenue),
        "open_rate": ratio(counts.opened, counts.delivered),
        "click_rate": ratio(counts.clicked, counts.delivered),
        "return_rate": ratio(len(counts.converted), len(counts.recipients)),
        "cost": float(cost),
        "roi": ratio(float(revenue), float(cost)),
    }


@dataclass(frozen=True)
class GroupOutcome:
    """One arm of a holdout test: how many enrolled, converted, and what they spent."""

    enrolled: int
    converted: int
    revenue: Decimal


@dataclass(frozen=True)
class HoldoutEntry:
    """One enrollment of a holdout test: its arm, its contact, when it entered and how long it is watched."""

    group: str  # "treatment" or "control"
    contact_id: int
    entered_at: datetime
    horizon: timedelta


def holdout_outcomes(
    entries: Iterable[HoldoutEntry], orders: Mapping[int, Sequence[tuple[datetime, Decimal]]],
) -> dict[str, GroupOutcome]:
    """Each arm's outcome: an entry converts with any order of its contact in (entered_at, entered_at + horizon].

    `orders` maps a contact to its orders as (placed_at, total), sorted by placed_at.
    """
    arms = {"treatment": [0, 0, Decimal("0")], "control": [0, 0, Decimal("0")]}
    times: dict[int, list[datetime]] = {}
    for entry in entries:
        placed = orders.get(entry.contact_id, ())
        if entry.contact_id not in times:
            times[entry.contact_id] = [when for when, _ in placed]
        first = bisect_right(times[entry.contact_id], entry.entered_at)
        after = bisect_right(times[entry.contact_id], entry.entered_at + entry.horizon)
        arm = arms[entry.group]
        arm[0] += 1
        arm[1] += 1 if after > first else 0
        arm[2] += sum((total for _, total in placed[first:after]), Decimal("0"))
    return {group: GroupOutcome(int(n), int(converted), Decimal(revenue)) for group, (n, converted, revenue) in arms.items()}


Z95 = 1.959964


def lift(treated: GroupOutcome, control: GroupOutcome, cost: Decimal) -> dict[str, object]:
    """Treated vs control conversion, the difference with a 95 % (Wald) interval, and increments."""
    if not treated.enrolled or not control.enrolled:
        return {"treated": _arm(treated), "control": _arm(control), "lift": None, "lift_ci95": None,
                "relative_lift": None, "incremental_conversions": None, "incremental_revenue": None, "incremental_roi": None}
    p_t = treated.converted / treated.enrolled
    p_c = control.converted / control.enrolled
    diff = p_t - p_c
    se = math.sqrt(p_t * (1 - p_t) / treated.enrolled + p_c * (1 - p_c) / control.enrolled)
    per_treated = treated.revenue / treated.enrolled
    per_control = control.revenue / control.enrolled
    incremental_revenue = ((per_treated - per_control) * treated.enrolled).quantize(Decimal("0.01"))
    return {
        "treated": _arm(treated),
        "control": _arm(control),
        "lift": round(diff, 4),
        "lift_ci95": [round(diff - Z95 * se, 4), round(diff + Z95 * se, 4)],
        "relative_lift": ratio(diff, p_c),
        "incremental_conversions": round(diff * treated.enrolled, 2),
        "incremental_revenue": float(incremental_revenue),
        "incremental_roi": ratio(float(incremental_revenue), float(cost)),
    }


def _arm(outcome: GroupOutcome) -> dict[str, object]:
    return {
        "enrolled": outcome.enrolled,
        "converted": outcome.converted,
        "conversion_rate": ratio(outcome.converted, outcome.enrolled),
        "revenue": float(outcome.revenue.quantize(Decimal("0.01"))),
    }
