"""Manager tasks: a person calls the valuable customers who went quiet, on a cadence, until an outcome."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.orm import Session

from mailer.errors import ValidationError
from mailer.models import Contact, ContactReason, ManagerTask, Store, TrackingEvent, User
from mailer.models.task import TASK_OUTCOMES
from mailer.segments.queries import store_thresholds

# Engagement this recent makes a customer "warm": worth calling again sooner.
WARM_WITHIN = timedelta(days=30)
FLUSH_EVERY = 500


def cadence(warm: bool, warm_days: float, cold_days: float) -> timedelta:
    """How long until a task comes round again: warm customers sooner than cold ones."""
    return timedelta(days=warm_days if warm else cold_days)


def valuable_threshold(session: Session, store: Store) -> Decimal | None:
    """The total spent that makes a customer valuable: top N % of customers, or the set amount."""
    candidates: list[Decimal] = []
    percent = store.setting("task_top_percent")
    if percent:
        customers = session.scalar(select(func.count()).select_from(Contact).where(Contact.store_id == store.id, Contact.orders_count >= 1)) or 0
        rank = math.ceil(customers * float(percent) / 100)
        if rank:
            value = session.scalar(
                select(Contact.total_spent).where(Contact.store_id == store.id, Contact.orders_count >= 1)
                .order_by(Contact.total_spent.desc()).offset(rank - 1).limit(1)
            )
            if value is not None:
                candidates.append(Decimal(value))
    if store.setting("task_min_spent") is not None:
        candidates.append(Decimal(str(store.setting("task_min_spent"))))
    return min(candidates) if candidates else None


def _assignee(session: Session, store: Store) -> User | None:
    email = store.setting("task_assignee_email")
    users = select(User).where(User.store_id == store.id)
    if email:
        found = session.scalar(users.where(User.email == str(email).lower()))
        if found is not None:
            return found
    return session.scalar(users.where(User.role == "owner").order_by(User.id).limit(1))


def _engaged_since(since: datetime) -> tuple[Select[tuple[int]], Select[tuple[int]]]:
    # Who engaged after `since`: a person's open or click, or an answer to "why did you leave?".
    touches = select(TrackingEvent.contact_id).where(
        TrackingEvent.machine.is_(False), TrackingEvent.kind.in_(("open", "click")), TrackingEvent.occurred_at >= since,
    )
    answers = select(ContactReason.contact_id).where(ContactReason.created_at >= since)
    return touches, answers


def is_warm(session: Session, contact_id: int, now: datetime) -> bool:
    """Did the customer engage lately (a person's open or click, or an answer to "why")?"""
    touches, answers = _engaged_since(now - WARM_WITHIN)
    return (
        session.scalar(touches.where(TrackingEvent.contact_id == contact_id).limit(1)) is not None
        or session.scalar(answers.where(ContactReason.contact_id == contact_id).limit(1)) is not None
    )


def warm_contacts(session: Session, store_id: int, now: datetime) -> set[int]:
    """The store's customers who engaged lately (see is_warm), in two queries whatever their number."""
    touches, answers = _engaged_since(now - WARM_WITHIN)
    touched = session.scalars(touches.where(TrackingEvent.store_id == store_id).distinct())
    answered = session.scalars(answers.where(ContactReason.store_id == store_id).distinct())
    return set(touched) | set(answered)


def task_title(contact: Contact, currency: str) -> str:
    """"Call Ada Lovelace (ada@…) — last order 2026-01-04, spent 420.00 USD, reason: too_expensive"."""
    name = contact.full_name or contact.email
    last = f"{contact.last_order_at:%Y-%m-%d}" if contact.last_order_at else "never"
    reason = f", reason: {contact.reason}" if contact.reason else ""
    return f"Call {name} ({contact.email}): last order {last}, spent {contact.total_spent:.2f} {currency}{reason}"


def tasks_stage(session: Session, store: Store, now: datetime) -> dict[str, int]:
    """The engine stage: close tasks of customers who came back, open one for each new valuable lapse."""
    returned = session.execute(
        update(ManagerTask)
        .where(
            ManagerTask.store_id == store.id, ManagerTask.status == "open",
            # Each task looks up its own contact by primary key. `contact_id IN (contacts who ordered
            # after this task's lapse)` scanned every contact of the store once per open task: after
            # a 100k wave's 10k tasks, the next tick took 100 s on both backends.
            exists().where(Contact.id == ManagerTask.contact_id, Contact.last_order_at > ManagerTask.lapse_at),
        )
        .values(status="closed", outcome="returned", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    threshold = valuable_threshold(session, store)
    if threshold is None:
        return {"tasks_closed_returned": max(returned, 0)}
    # The lapse conditions written out on Contact itself: joining the lapsed-customers subquery
    # back to contacts made SQLite and PostgreSQL loop over it once per contact (quadratic).
    first_cutoff = now - timedelta(days=store_thresholds(store)[0])
    candidates = session.scalars(
        select(Contact)
        .where(
            Contact.store_id == store.id, Contact.orders_count >= 1, Contact.last_order_at <= first_cutoff,
            Contact.total_spent >= threshold, Contact.unsubscribed_at.is_(None),
            ~select(ManagerTask.id).where(ManagerTask.contact_id == Contact.id, ManagerTask.lapse_at == Contact.last_order_at).exists(),
            ~select(ManagerTask.id).where(ManagerTask.contact_id == Contact.id, ManagerTask.status == "open").exists(),
        )
    ).all()
    assignee = _assignee(session, store)
    warm = warm_contacts(session, store.id, now) if candidates else set()  # a wave opens thousands at once
    for opened, contact in enumerate(candidates, 1):
        session.add(ManagerTask(
            store_id=store.id, contact_id=contact.id, assignee_id=assignee.id if assignee else None,
            lapse_at=contact.last_order_at, title=task_title(contact, store.currency), status="open",
            warmth="warm" if contact.id in warm else "cold", due_at=now, created_at=now,
        ))
        if opened % FLUSH_EVERY == 0:
            session.flush()  # once stored, the session holds them weakly: a wave's thousands never pile up
    session.flush()
    return {"tasks_closed_returned": max(returned, 0), "tasks_opened": len(candidates)}


def close_task(session: Session, task: ManagerTask, outcome: str, now: datetime) -> None:
    """Close an open task with its outcome (returned, declined, unreachable)."""
    if outcome not in TASK_OUTCOMES:
        raise ValidationError(f"outcome must be one of {', '.join(TASK_OUTCOMES)}, got {outcome!r}")
    if task.status != "open":
        raise ValidationError("this task is already closed")
    task.status, task.outcome, task.closed_at = "closed", outcome, now
    session.flush()


def take_due_tasks(session: Session, user: User, now: datetime) -> list[ManagerTask]:
    """The user's open tasks that are due, each moved on to its next turn by its cadence."""
    store = session.get(Store, user.store_id)
    assert store is not None
    tasks = list(session.scalars(
        select(ManagerTask).where(ManagerTask.assignee_id == user.id, ManagerTask.status == "open", ManagerTask.due_at <= now)
        .order_by(ManagerTask.due_at, ManagerTask.id)
    ))
    for task in tasks:
        task.warmth = "warm" if is_warm(session, task.contact_id, now) else "cold"
        task.due_at = now + cadence(task.warmth == "warm", float(store.setting("task_warm_days")), float(store.setting("task_cold_days")))
        task.repeats += 1
    session.flush()
    return tasks
