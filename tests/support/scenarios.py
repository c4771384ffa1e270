"""Scenarios shared by the engine and web tests: customers with planned win-back messages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.campaigns.enroll import enroll, plan_steps
from mailer.models import Contact, Message, Store
from tests.support.factories import T0, campaign, make_contact, make_order

NOW = T0 + timedelta(days=100)


def plan_winback(session: Session, store: Store, contacts: list[Contact], due=NOW, lapse: str = "1") -> list[int]:
    """Enroll each contact in the store's win-back tier-1 step, due at `due`; returns message ids."""
    winback = campaign(session, store, "winback")
    for contact in contacts:
        enrollment = enroll(session, campaign=winback, contact_id=contact.id, subject_key=f"lapse:{lapse}", anchor_at=due, now=due, tier=1)
        assert enrollment is not None
        plan_steps(session, enrollment, [winback.step(1)], due)
    session.flush()
    return list(session.scalars(select(Message.id).where(Message.store_id == store.id).order_by(Message.id)))


def customers(session: Session, store: Store, n: int) -> list[Contact]:
    people = []
    for _ in range(n):
        person = make_contact(session, store)
        make_order(session, person, NOW - timedelta(days=10))  # recent: the win-back stage leaves them be
        people.append(person)
    return people


def statuses(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Message.status, func.count()).group_by(Message.status)).all())  # type: ignore[arg-type]


