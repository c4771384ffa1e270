"""Erasure (the right to be forgotten): a contact and everything of theirs go; a hashed suppression stays."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from mailer.ingest.track_queue import forget_queued
from mailer.models import AnonymousId, CapturedEmail, Cart, Contact, Event, Message
from mailer.tracking.suppressions import suppress


def erase_contact(session: Session, contact: Contact, now: datetime, *, source: str) -> None:
    """Delete the contact and everything of theirs; only a hashed suppression entry stays.

    The foreign keys cascade from the contact to carts, orders, events, anonymous ids,
    enrollments, messages, coupons and tracking events; captured emails and the browser's
    events that never got merged carry no key to the contact, so they go explicitly, as do the
    snippet's bodies about them still waiting in the track queue.
    """
    store_id = contact.store_id
    suppress(session, store_id, contact.email, "erased", now, source=source)
    anonymous_ids = select(AnonymousId.anonymous_id).where(
        AnonymousId.store_id == store_id, AnonymousId.contact_id == contact.id
    )
    # What the snippet sent about them and is not applied yet (the queued ingest mode) goes too.
    forget_queued(session, store_id, contact.email, list(session.scalars(anonymous_ids)))
    message_ids = select(Message.id).where(Message.contact_id == contact.id)
    session.execute(
        delete(CapturedEmail)
        .where(CapturedEmail.store_id == store_id)
        .where(or_(CapturedEmail.message_id.in_(message_ids), CapturedEmail.recipient == contact.email))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Event)
        .where(Event.store_id == store_id)
        .where(or_(
            Event.contact_id == contact.id,
            and_(Event.contact_id.is_(None), Event.anonymous_id.in_(anonymous_ids)),
        ))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Cart)
        .where(Cart.store_id == store_id, Cart.contact_id.is_(None), Cart.anonymous_id.in_(anonymous_ids))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(Contact).where(Contact.id == contact.id).execution_options(synchronize_session=False))
    session.expunge(contact)
    session.flush()
