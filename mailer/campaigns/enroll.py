"""Enter contacts into campaigns and plan their steps in the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.db import insert_ignoring_conflicts
from mailer.models import Campaign, CampaignStep, Enrollment, Message
from mailer.scheduling.planner import holdout_group, step_due_at

# Rows a stage writes to enrollments and messages at which it refreshes their planner statistics.
REFRESH_STATISTICS_AFTER = 5000


def enroll(
    session: Session,
    *,
    campaign: Campaign,
    contact_id: int,
    subject_key: str,
    anchor_at: datetime,
    now: datetime,
    cart_id: int | None = None,
    tier: int | None = None,
) -> Enrollment | None:
    """Create the enrollment for this campaign × contact × subject; None when it already exists.

    The holdout group is drawn here, once, deterministically: control enrollments are planned
    like the rest but never sent (DESIGN §3 Holdout).
    """
    existing = session.scalar(
        select(Enrollment.id).where(
            Enrollment.campaign_id == campaign.id,
            Enrollment.contact_id == contact_id,
            Enrollment.subject_key == subject_key,
        )
    )
    if existing is not None:
        return None
    enrollment = Enrollment(
        store_id=campaign.store_id,
        campaign_id=campaign.id,
        contact_id=contact_id,
        subject_key=subject_key,
        cart_id=cart_id,
        tier=tier,
        group=holdout_group(campaign.store_id, campaign.key, contact_id, subject_key, campaign.holdout_percent),
        status="active",
        anchor_at=anchor_at,
        entered_at=now,
    )
    session.add(enrollment)
    session.flush()
    return enrollment


def plan_steps(
    session: Session, enrollment: Enrollment, steps: Iterable[CampaignStep], now: datetime,
    *, anchor: datetime | None = None,
) -> int:
    """Put one outbox row per step (due by the planner) for this enrollment; existing rows stay.

    Delays count from `anchor` (default: the enrollment's anchor). Returns how many rows were
    new. The UNIQUE (enrollment, step) key makes planning idempotent.
    """
    start = anchor or enrollment.anchor_at
    rows = [
        outbox_row(enrollment.store_id, enrollment.campaign_id, enrollment.id, enrollment.contact_id,
                   enrollment.group, step, start, now)
        for step in steps
    ]
    return insert_ignoring_conflicts(session, Message, rows)


def outbox_row(
    store_id: int, campaign_id: int, enrollment_id: int, contact_id: int, group: str, step: CampaignStep,
    start: datetime, now: datetime,
) -> dict[str, object]:
    """The planned outbox row of one step of an enrollment, due by the planner from `start`."""
    return {
        "store_id": store_id,
        "campaign_id": campaign_id,
        "enrollment_id": enrollment_id,
        "contact_id": contact_id,
        "step_index": step.index,
        "is_control": group == "control",
        "status": "planned",
        "due_at": step_due_at(start, step.delay_minutes, step.window_minutes, f"{contact_id}"),
        "attempts": 0,
        "created_at": now,
    }
