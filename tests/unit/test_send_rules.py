"""Unit tests of the send-time decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from mailer.outbox.rules import Defer, Send, SendFacts, Skip, decide
from mailer.scheduling.planner import QuietHours

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
BASE = SendFacts(
    now=NOW, enrollment_status="active", enrollment_exit_reason=None, is_control=False, campaign_enabled=True,
    suppressed=False, unsubscribed=False, consent="granted", is_customer=True, step_requires_consent=True,
    store_allows_first_without_consent=False, store_soft_opt_in=True, quiet_hours=None, timezone=None,
    store_timezone="UTC", last_emailed_at=None, last_emailed_message_id=None, message_id=7, cap_hours=16,
)


def test_sends_when_nothing_stands_in_the_way() -> None:
    assert decide(BASE) == Send()


def test_exits_control_suppression_and_disabled_campaigns_skip() -> None:
    assert decide(replace(BASE, enrollment_status="exited", enrollment_exit_reason="returned")) == Skip("returned")
    assert decide(replace(BASE, is_control=True)) == Skip("holdout")
    assert decide(replace(BASE, campaign_enabled=False)) == Skip("campaign_disabled")
    assert decide(replace(BASE, suppressed=True)) == Skip("suppressed")
    assert decide(replace(BASE, unsubscribed=True)) == Skip("suppressed")


def test_consent_rules() -> None:
    assert decide(replace(BASE, consent="denied")) == Skip("no_consent")
    # unknown consent: customers under soft opt-in yes, prospects no ...
    assert decide(replace(BASE, consent="unknown")) == Send()
    prospect = replace(BASE, consent="unknown", is_customer=False)
    assert decide(prospect) == Skip("no_consent")
    # ... except the first cart reminder where the store allows it
    first = replace(prospect, step_requires_consent=False)
    assert decide(first) == Skip("no_consent")
    assert decide(replace(first, store_allows_first_without_consent=True)) == Send()
    assert decide(replace(BASE, consent="unknown", store_soft_opt_in=False)) == Skip("no_consent")


def test_quiet_hours_defer_in_the_contacts_zone() -> None:
    quiet = QuietHours(time(11, 0), time(13, 0))
    decision = decide(replace(BASE, quiet_hours=quiet))
    assert decision == Defer(datetime(2026, 5, 4, 13, 0, tzinfo=UTC), "quiet_hours")
    # 12:00 UTC is 21:00 in Tokyo: outside 11–13 local, so it goes
    assert decide(replace(BASE, quiet_hours=quiet, timezone="Asia/Tokyo")) == Send()


def test_frequency_cap_defers_never_drops() -> None:
    recent = replace(BASE, last_emailed_at=NOW - timedelta(hours=2), last_emailed_message_id=3)
    assert decide(recent) == Defer(NOW + timedelta(hours=14), "frequency_cap")
    # the same message retaking its own slot (a reclaimed send) is not capped
    assert decide(replace(recent, last_emailed_message_id=7)) == Send()
