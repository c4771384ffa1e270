"""Unit tests of the pure lifecycle rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailer.segments.lifecycle import (
    audience_of,
    check_thresholds,
    days_since,
    in_audience,
    tier_for_days,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "tier"), [(0, 0), (89, 0), (90, 1), (179, 1), (180, 2), (359, 2), (360, 3), (4000, 3)]
)
def test_tier_is_the_largest_threshold_passed(days: int, tier: int) -> None:
    assert tier_for_days(days, [90, 180, 360]) == tier


def test_days_are_whole_days_rounded_down() -> None:
    assert days_since(NOW, NOW - timedelta(days=90)) == 90
    assert days_since(NOW, NOW - timedelta(days=90) + timedelta(seconds=1)) == 89
    assert days_since(NOW, NOW - timedelta(days=89, hours=23, minutes=59)) == 89


def test_audiences() -> None:
    assert [audience_of(n) for n in (0, 1, 2, 7)] == ["prospect", "one_time", "repeat", "repeat"]
    assert in_audience(1, "one_time") and not in_audience(2, "one_time")
    assert in_audience(2, "all") and not in_audience(0, "all")


def test_thresholds_are_validated() -> None:
    assert check_thresholds([30, 60, 120]) == [30, 60, 120]
    for bad in ([], [90, 90], [180, 90], [0], ["90"], "90", [True]):
        with pytest.raises(ValueError):
            check_thresholds(bad)
