"""Tier counts from SQL on each backend, boundary days included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailer.segments.queries import segment_counts
from tests.support.factories import make_contact, make_order, make_store

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_exact_tier_counts_at_the_boundaries(session) -> None:
    store = make_store(session)
    one_time_days = [0, 89, 90, 179, 180, 359, 360, 1000]
    for days in one_time_days:
        make_order(session, make_contact(session, store), NOW - timedelta(days=days))
    # a second before the boundary is still the day before
    make_order(session, make_contact(session, store), NOW - timedelta(days=90) + timedelta(seconds=1))
    for days in (10, 200):
        person = make_contact(session, store)
        make_order(session, person, NOW - timedelta(days=days + 30))
        make_order(session, person, NOW - timedelta(days=days))
    make_contact(session, store)  # a prospect
    other = make_store(session)
    make_order(session, make_contact(session, other), NOW - timedelta(days=100))  # another store's

    counts = segment_counts(session, store, NOW)
    assert counts == {
        "one_time": {"active": 3, "90": 2, "180": 2, "360": 2},
        "repeat": {"active": 1, "90": 0, "180": 1, "360": 0},
        "prospects": 1,
    }


def test_thresholds_follow_the_store_setting(session) -> None:
    store = make_store(session, tier_thresholds=[30, 60, 120])
    for days in (29, 30, 60, 130):
        make_order(session, make_contact(session, store), NOW - timedelta(days=days))
    assert segment_counts(session, store, NOW)["one_time"] == {"active": 1, "30": 1, "60": 1, "120": 1}
