"""Unit tests of the follow-up each reason calls for."""

from datetime import UTC, datetime, timedelta

from mailer.campaigns.reasons import APOLOGY_TEMPLATE, DEFAULT_REASON_RULES, plan_follow_up

AT = datetime(2026, 5, 1, tzinfo=UTC)
LADDER = [10, 15, 20]


def test_price_leavers_get_the_next_tier_sooner_and_one_rung_richer() -> None:
    follow_up = plan_follow_up(DEFAULT_REASON_RULES["too_expensive"], AT, 1, LADDER)
    assert follow_up is not None
    assert (follow_up.due_at, follow_up.base_step, follow_up.discount) == (AT + timedelta(days=30), 2, 20)
    top = plan_follow_up(DEFAULT_REASON_RULES["too_expensive"], AT, 3, LADDER)
    assert top is not None and top.base_step == 3 and top.discount == 25  # past the top rung: +5


def test_service_leavers_get_an_apology_without_a_discount() -> None:
    follow_up = plan_follow_up(DEFAULT_REASON_RULES["service"], AT, 2, LADDER)
    assert follow_up is not None
    assert (follow_up.template, follow_up.discount, follow_up.due_at) == (APOLOGY_TEMPLATE, 0, AT + timedelta(days=14))


def test_no_longer_need_it_sends_nothing_and_other_offers_the_usual_next_step() -> None:
    assert plan_follow_up(DEFAULT_REASON_RULES["no_longer_need"], AT, 1, LADDER) is None
    other = plan_follow_up(DEFAULT_REASON_RULES["other"], AT, 1, LADDER)
    assert other is not None and (other.base_step, other.discount, other.template) == (2, 15, None)
