"""Unit tests of the attribution rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailer.reports.attribution import Credit, Touch, choose_credit

ORDER = datetime(2026, 4, 10, 12, tzinfo=UTC)
WINDOW = timedelta(days=5)


def test_coupon_wins_over_any_click() -> None:
    touches = [Touch(2, "click", ORDER - timedelta(hours=1))]
    assert choose_credit(ORDER, 1, touches, WINDOW) == Credit(1, "coupon")


def test_last_click_then_last_open_within_the_window() -> None:
    touches = [
        Touch(1, "click", ORDER - timedelta(days=2)),
        Touch(2, "click", ORDER - timedelta(days=1)),
        Touch(3, "open", ORDER - timedelta(hours=1)),  # an open never beats a click
    ]
    assert choose_credit(ORDER, None, touches, WINDOW) == Credit(2, "click")
    assert choose_credit(ORDER, None, touches[2:], WINDOW) == Credit(3, "open")


def test_touches_outside_the_window_or_after_the_order_do_not_count() -> None:
    touches = [Touch(1, "click", ORDER - timedelta(days=5, seconds=1)), Touch(2, "click", ORDER + timedelta(minutes=1))]
    assert choose_credit(ORDER, None, touches, WINDOW) is None
    assert choose_credit(ORDER, None, [Touch(1, "open", ORDER - WINDOW)], WINDOW) == Credit(1, "open")
