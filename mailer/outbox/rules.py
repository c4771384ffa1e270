"""The send-time decision for one claimed message, as a pure function of plain facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailer.scheduling.planner import QuietHours, after_quiet_hours, frequency_cap_release, zone


@dataclass(frozen=True)
class SendFacts:
    """What the outbox knows about a message at the moment it would send it."""

    now: datetime
    enrollment_status: str
    enrollment_exit_reason: str | None
    is_control: bool
    campaign_enabled: bool
    suppressed: bool
    unsubscribed: bool
    consent: str  # unknown | granted | denied
    is_customer: bool  # has ordered at least once
    step_requires_consent: bool
    store_allows_first_without_consent: bool
    store_soft_opt_in: bool
    quiet_hours: QuietHours | None
    timezone: str | None
    store_timezone: str
    last_emailed_at: datetime | None
    last_emailed_message_id: int | None
    message_id: int
    cap_hours: float


@dataclass(frozen=True)
class Send:
    """Go ahead."""


@dataclass(frozen=True)
class Skip:
    """Never send this message; `reason` is recorded on the row."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Not now: plan it again for `until` (the cap and quiet hours defer, never drop)."""

    until: datetime
    reason: str


Decision = Send | Skip | Defer


def _may_mail_without_consent(facts: SendFacts) -> bool:
    """Unknown consent: existing customers under the store's soft opt-in, or the one step eligible."""
    if facts.is_customer and facts.store_soft_opt_in:
        return True
    return not facts.step_requires_consent and facts.store_allows_first_without_consent


def decide(facts: SendFacts) -> Decision:
    """Skip, defer or send — checked in the order that makes the cheapest, firmest answer win."""
    if facts.enrollment_status == "exited":
        return Skip(facts.enrollment_exit_reason or "exited")
    if facts.is_control:
        return Skip("holdout")
    if not facts.campaign_enabled:
        return Skip("campaign_disabled")
    if facts.suppressed or facts.unsubscribed:
        return Skip("suppressed")
    if facts.consent == "denied":
        return Skip("no_consent")
    if facts.consent != "granted" and not _may_mail_without_consent(facts):
        return Skip("no_consent")
    tz = zone(facts.timezone, facts.store_timezone)
    quiet_end = after_quiet_hours(facts.now, facts.quiet_hours, tz)
    if quiet_end > facts.now:
        return Defer(quiet_end, "quiet_hours")
    if facts.last_emailed_message_id != facts.message_id:
        release = frequency_cap_release(facts.now, facts.last_emailed_at, facts.cap_hours)
        if release is not None:
            return Defer(after_quiet_hours(release, facts.quiet_hours, tz), "frequency_cap")
    return Send()
