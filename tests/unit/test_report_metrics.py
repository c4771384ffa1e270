"""Unit tests of the report math."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mailer.reports.metrics import (
    Counts,
    GroupOutcome,
    HoldoutEntry,
    discount_given,
    holdout_outcomes,
    lift,
    metrics,
    ratio,
)


def test_metrics_from_counts() -> None:
    counts = Counts(sent=10, delivered=9, bounced=1, opened=6, opened_machine=2, clicked=3, unsubscribed=1,
                    recipients={1, 2, 3, 4, 5, 6, 7, 8, 9}, converted={1, 2}, revenue=Decimal("150"), discounts=Decimal("20"))
    result = metrics(counts, Decimal("0.50"))
    assert result["open_rate"] == round(6 / 9, 4) and result["click_rate"] == round(3 / 9, 4)
    assert result["return_rate"] == round(2 / 9, 4)
    assert result["cost"] == 25.0 and result["roi"] == 6.0 and result["converted"] == 2


def test_empty_slices_have_no_rates() -> None:
    result = metrics(Counts(), Decimal("0"))
    assert result["open_rate"] is None and result["roi"] is None and result["cost"] == 0.0
    assert ratio(1, 0) is None


def test_discount_given_recovers_the_discount_from_the_paid_total() -> None:
    assert discount_given(Decimal("90"), 10) == Decimal("10.00")
    assert discount_given(Decimal("80"), 20) == Decimal("20.00")
    assert discount_given(Decimal("80"), 0) == Decimal("0")


def test_lift_with_interval_and_increments() -> None:
    result = lift(GroupOutcome(1000, 120, Decimal("6000")), GroupOutcome(1000, 80, Decimal("4000")), Decimal("1000"))
    assert result["lift"] == 0.04
    low, high = result["lift_ci95"]
    assert low < 0.04 < high and round(high - 0.04, 4) == round(0.04 - low, 4)
    assert 0.01 < low < 0.02  # se ≈ 0.0134 → 0.04 ± 0.026
    assert result["relative_lift"] == 0.5
    assert result["incremental_revenue"] == 2000.0 and result["incremental_roi"] == 2.0
    assert lift(GroupOutcome(10, 1, Decimal("5")), GroupOutcome(0, 0, Decimal("0")), Decimal("1"))["lift"] is None


def test_holdout_outcomes_count_orders_after_entering_and_within_the_horizon() -> None:
    entered = datetime(2026, 3, 1, 12, tzinfo=UTC)
    week = timedelta(days=7)
    orders = {
        1: [(entered - timedelta(days=1), Decimal("99")), (entered + timedelta(days=2), Decimal("30")),
            (entered + timedelta(days=3), Decimal("20"))],  # one before entering (not counted), two within
        2: [(entered, Decimal("40"))],  # at the very moment of entering: not after it
        3: [(entered + week, Decimal("25")), (entered + week + timedelta(seconds=1), Decimal("70"))],  # the bound counts
        4: [(entered + timedelta(days=1), Decimal("15"))],
    }
    entries = [
        HoldoutEntry("treatment", 1, entered, week),
        HoldoutEntry("treatment", 2, entered, week),
        HoldoutEntry("control", 3, entered, week),
        HoldoutEntry("control", 4, entered + timedelta(days=2), week),  # entered after its order
        HoldoutEntry("control", 5, entered, week),  # no orders at all
        HoldoutEntry("treatment", 1, entered + timedelta(days=2, hours=12), timedelta(hours=1)),  # re-entered, nothing in its hour
    ]
    outcomes = holdout_outcomes(entries, orders)
    assert outcomes["treatment"] == GroupOutcome(3, 1, Decimal("50"))
    assert outcomes["control"] == GroupOutcome(3, 1, Decimal("25"))
    assert holdout_outcomes([], orders) == {"treatment": GroupOutcome(0, 0, Decimal("0")),
                                            "control": GroupOutcome(0, 0, Decimal("0"))}
