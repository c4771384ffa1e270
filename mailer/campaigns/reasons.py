"""Why they left: the one-click reasons, the store's rules for each, and recording an answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.campaigns.exits import exit_enrollments
from mailer.db import insert_ignoring_conflicts
from mailer.models import Campaign, Contact, ContactReason, Enrollment, Message, Store

# The answers offered in every win-back email, in the order shown.
REASONS: dict[str, str] = {
    "too_expensive": "Too expensive",
    "quality": "Quality",
    "service": "Service",
    "delivery": "Delivery",
    "found_elsewhere": "Found it elsewhere",
    "no_longer_need": "No longer need it",
    "other": "Other",
}
REASON_KEYS = tuple(REASONS)

# What each answer leads to (a store may override any of them in settings["reason_rules"]):
# price leavers get a better offer sooner, service leavers an apology without a discount, and
# "no longer need it" ends the lapse quietly.
DEFAULT_REASON_RULES: dict[str, dict[str, Any]] = {
    "too_expensive": {"action": "offer", "delay_days": 30, "raise_tiers": 1},
    "quality": {"action": "apology", "delay_days": 14},
    "service": {"action": "apology", "delay_days": 14},
    "delivery": {"action": "apology", "delay_days": 14},
    "found_elsewhere": {"action": "offer", "delay_days": 30, "raise_tiers": 0},
    "other": {"action": "offer", "delay_days": 30, "raise_tiers": 0},
    "no_longer_need": {"action": "end"},
}
APOLOGY_TEMPLATE = "winback/apology"
APOLOGY_SUBJECT = "{{ contact.first_name or 'Hello' }}, we're sorry, and we'd like to put it right"
# Follow-ups sit after the campaign's own steps in the outbox: step 100 + the tier they follow.
FOLLOW_UP_BASE = 100


@dataclass(frozen=True)
class FollowUp:
    """The email a reason calls for: when, from which step, with what template and discount."""

    due_at: datetime
    base_step: int
    template: str | None
    subject: str | None
    discount: int


def reason_rules(store: Store) -> dict[str, dict[str, Any]]:
    """The store's rule per reason: the defaults, each overridable in settings["reason_rules"]."""
    overrides = (store.settings or {}).get("reason_rules") or {}
    return {key: {**rule, **overrides.get(key, {})} for key, rule in DEFAULT_REASON_RULES.items()}


def plan_follow_up(
    rule: dict[str, Any], answered_at: datetime, tier: int, discounts: list[int]
) -> FollowUp | None:
    """Pure: the follow-up for an answer given in tier `tier` (discounts: the campaign's per tier).

    `offer` repeats the next tier's email sooner, its discount raised `raise_tiers` rungs up the
    ladder (past the top rung, +5 points a rung); `apology` sends the apology without a discount;
    `end` (and anything else) sends nothing.
    """
    action = rule.get("action")
    due = answered_at + timedelta(days=float(rule.get("delay_days", 30)))
    if action == "apology":
        return FollowUp(due, tier, APOLOGY_TEMPLATE, APOLOGY_SUBJECT, 0)
    if action != "offer" or not discounts:
        return None
    next_tier = min(tier + 1, len(discounts))
    rung = next_tier - 1 + int(rule.get("raise_tiers", 0))
    top = len(discounts) - 1
    discount = discounts[min(rung, top)] + 5 * max(0, rung - top)
    return FollowUp(due, next_tier, None, None, min(discount, 90))


def record_reason(session: Session, message: Message, reason: str, now: datetime, note: str | None = None) -> bool:
    """Record a customer's answer and act on it; False when this exact answer was already given.

    The latest answer is the contact's reason. Acting on it: end the lapse, or plan one follow-up
    for the tier the email was about, within the store's cap on win-back emails per lapse.
    """
    contact = session.get(Contact, message.contact_id)
    enrollment = session.get(Enrollment, message.enrollment_id)
    campaign = session.get(Campaign, message.campaign_id)
    store = session.get(Store, message.store_id)
    if contact is None or enrollment is None or campaign is None or store is None:
        return False
    fresh = insert_ignoring_conflicts(session, ContactReason, [{
        "store_id": store.id, "contact_id": contact.id, "message_id": message.id, "campaign_id": campaign.id,
        "tier": message.step_index if message.step_index < FOLLOW_UP_BASE else message.step_index - FOLLOW_UP_BASE,
        "reason": reason, "note": (note or "").strip()[:2000] or None, "created_at": now,
    }]) == 1
    if not fresh:
        if note:  # the "other" page sends its free text after the click that recorded the answer
            row = session.scalar(select(ContactReason).where(ContactReason.message_id == message.id, ContactReason.reason == reason))
            if row is not None and not row.note:
                row.note = note.strip()[:2000]
        return False
    contact.reason, contact.reason_at, contact.updated_at = reason, now, now
    if campaign.kind == "winback" and enrollment.status == "active":
        _act_on(session, store, campaign, enrollment, message, reason_rules(store)[reason], now)
    session.flush()
    return True


def _act_on(session: Session, store: Store, campaign: Campaign, enrollment: Enrollment, message: Message, rule: dict[str, Any], now: datetime) -> None:
    if rule.get("action") == "end":
        exit_enrollments(session, [enrollment.id], "declined", now)
        return
    attempts = session.scalar(
        select(func.count()).select_from(Message).where(Message.enrollment_id == enrollment.id, Message.status.in_(("planned", "sending", "sent")))
    ) or 0
    if attempts >= int(store.setting("max_winback_attempts")):
        return
    tiers = sorted((s for s in campaign.steps if s.tier is not None), key=lambda s: s.tier or 0)
    tier = message.step_index if message.step_index < FOLLOW_UP_BASE else message.step_index - FOLLOW_UP_BASE
    follow_up = plan_follow_up(rule, now, tier, [s.discount_percent for s in tiers])
    if follow_up is None:
        return
    insert_ignoring_conflicts(session, Message, [{
        "store_id": enrollment.store_id, "campaign_id": campaign.id, "enrollment_id": enrollment.id,
        "contact_id": enrollment.contact_id, "step_index": FOLLOW_UP_BASE + follow_up.base_step,
        "is_control": enrollment.group == "control", "status": "planned", "due_at": follow_up.due_at,
        "attempts": 0, "created_at": now, "discount_override": follow_up.discount,
        "template_override": follow_up.template, "subject_override": follow_up.subject,
    }])
