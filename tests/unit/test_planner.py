"""Unit tests of the pure scheduling decisions."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailer.scheduling.planner import (
    QuietHours,
    after_quiet_hours,
    frequency_cap_release,
    holdout_group,
    retry_at,
    step_due_at,
    zone,
)

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_step_due_at_without_window_is_anchor_plus_delay() -> None:
    assert step_due_at(T, 0, 0, "1") == T
    assert step_due_at(T, 24 * 60, 0, "1") == T + timedelta(days=1)


def test_step_due_at_spreads_inside_the_window_deterministically() -> None:
    five, two = 5 * 24 * 60, 2 * 24 * 60
    dues = [step_due_at(T, five, two, str(contact)) for contact in range(2000)]
    assert all(T + timedelta(days=5) <= d <= T + timedelta(days=7) for d in dues)
    # spread, not a spike: every half-day slot of the window gets someone
    slots = {int((d - T - timedelta(days=5)) / timedelta(hours=12)) for d in dues}
    assert slots >= {0, 1, 2, 3}
    assert dues == [step_due_at(T, five, two, str(contact)) for contact in range(2000)]


def test_holdout_group_is_deterministic_and_near_the_percentage() -> None:
    groups = [holdout_group(1, "winback", c, "lapse:x", 20) for c in range(5000)]
    share = groups.count("control") / len(groups)
    assert 0.17 < share < 0.23
    assert groups == [holdout_group(1, "winback", c, "lapse:x", 20) for c in range(5000)]
    assert set(holdout_group(1, "winback", c, "lapse:x", 0) for c in range(100)) == {"treatment"}


def test_quiet_hours_across_midnight() -> None:
    quiet = QuietHours(time(21, 0), time(8, 0))
    berlin = ZoneInfo("Europe/Berlin")
    evening = datetime(2026, 3, 10, 21, 30, tzinfo=berlin)
    assert after_quiet_hours(evening, quiet, berlin) == datetime(2026, 3, 11, 8, 0, tzinfo=berlin)
    early = datetime(2026, 3, 11, 6, 0, tzinfo=berlin)
    assert after_quiet_hours(early, quiet, berlin) == datetime(2026, 3, 11, 8, 0, tzinfo=berlin)
    noon = datetime(2026, 3, 11, 12, 0, tzinfo=berlin)
    assert after_quiet_hours(noon, quiet, berlin) == noon
    assert after_quiet_hours(noon, None, berlin) == noon


def test_quiet_hours_within_one_day_and_parse_errors() -> None:
    quiet = QuietHours.parse({"start": "12:00", "end": "14:00"})
    assert quiet is not None
    utc = ZoneInfo("UTC")
    assert after_quiet_hours(datetime(2026, 1, 1, 13, tzinfo=UTC), quiet, utc) == datetime(2026, 1, 1, 14, tzinfo=UTC)
    assert QuietHours.parse(None) is None
    with pytest.raises(ValueError):
        QuietHours.parse({"start": "21:00"})


def test_unknown_zone_falls_back() -> None:
    assert zone("Not/AZone", "Europe/Paris") == ZoneInfo("Europe/Paris")
    assert zone(None, "bogus") == ZoneInfo("UTC")


def test_frequency_cap_defers_until_release() -> None:
    assert frequency_cap_release(T, None, 16) is None
    assert frequency_cap_release(T, T - timedelta(hours=17), 16) is None
    assert frequency_cap_release(T, T - timedelta(hours=1), 16) == T + timedelta(hours=15)
    assert frequency_cap_release(T, T - timedelta(hours=1), 0) is None


def test_retry_backs_off_then_gives_up() -> None:
    delays = [retry_at(T, attempt) for attempt in range(1, 8)]
    assert delays[0] == T + timedelta(minutes=1)
    assert all(a < b for a, b in zip(delays[:5], delays[1:6], strict=True))  # type: ignore[operator]
    assert delays[6] is None
