"""Pure lifecycle rules: days since the last order, the tier it puts a customer in, the audience."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

AUDIENCE_CHOICES = ("one_time", "repeat", "all")


def days_since(now: datetime, last_order_at: datetime) -> int:
    """Whole days between the last order and now: floor((now − last) / 24 h)."""
    return (now - last_order_at) // timedelta(days=1)


def tier_for_days(days: int, thresholds: Sequence[int]) -> int:
    """0 for active, else the 1-based index of the largest threshold `t` with `days ≥ t`."""
    tier = 0
    for index, threshold in enumerate(sorted(thresholds), start=1):
        if days >= threshold:
            tier = index
    return tier


def audience_of(orders_count: int) -> str:
    """`prospect` (no order), `one_time` (exactly one) or `repeat` (two or more)."""
    if orders_count <= 0:
        return "prospect"
    return "one_time" if orders_count == 1 else "repeat"


def in_audience(orders_count: int, audience: str) -> bool:
    """Whether a customer with this many orders belongs to a campaign's audience."""
    kind = audience_of(orders_count)
    return kind != "prospect" and audience in (kind, "all")


def tier_cutoffs(now: datetime, thresholds: Sequence[int]) -> list[datetime]:
    """For each threshold (ascending), the latest last-order time that puts a customer in that tier.

    `days ≥ t` ⟺ `last_order_at ≤ now − t days`, so SQL can compare the stored time directly
    (and use the index) instead of computing days per row.
    """
    return [now - timedelta(days=t) for t in sorted(thresholds)]


def check_thresholds(value: object) -> list[int]:
    """Validate a store's tier thresholds: 1 to 5 increasing positive whole days."""
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 5:
        raise ValueError("tier thresholds must be a list of 1 to 5 day counts, e.g. [90, 180, 360]")
    days = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ValueError(f"tier threshold must be a positive whole number of days, got {item!r}")
        days.append(item)
    if days != sorted(set(days)):
        raise ValueError(f"tier thresholds must increase, got {days}")
    return days
