"""Who a shopper is: normalized emails, finding or creating the store's contact for one, and what identify tells of them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from mailer.db import expire_loaded, insert_ignoring_statement
from mailer.errors import ValidationError
from mailer.models import Contact

if TYPE_CHECKING:  # schema imports normalize_email from here
    from mailer.ingest.schema import Traits

# Deliberately simple: one @, a dot in the domain, no spaces or control characters, RFC length limits.
_EMAIL = re.compile(r"^[^\s@<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def normalize_email(value: object) -> str:
    """Trim and lower-case an email; raise ValidationError when it is not one."""
    if not isinstance(value, str):
        raise ValidationError("email must be a string")
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValidationError(f"invalid email address: {value[:80]!r}")
    return email


def find_contact(session: Session, store_id: int, email: str) -> Contact | None:
    """The store's contact with this (normalized) email, if any."""
    return session.scalar(select(Contact).where(Contact.store_id == store_id, Contact.email == email))


_contacts = Contact.__table__
_CONTACT_ID = select(_contacts.c.id).where(_contacts.c.store_id == bindparam("store_id"), _contacts.c.email == bindparam("email"))


def contact_id_for_email(session: Session, store_id: int, email: str, now: datetime, **fields: object) -> tuple[int, bool]:
    """The id of the store's contact for `email` (normalized here), and whether this call created it with `fields`.

    One INSERT for a new contact, an INSERT and a read for a known one; Core statements, no ORM
    object (the snippet's identify calls need only the id). A known contact's fields are the
    caller's to update.
    """
    email = normalize_email(email)
    connection = session.connection()
    row = {"store_id": store_id, "email": email, "created_at": now, "updated_at": now,
           "first_name": "", "last_name": "", "timezone": None, **fields}
    created = connection.execute(insert_ignoring_statement(connection.dialect.name, _contacts), [row]).first()
    if created is not None:
        return int(created[0]), True
    return int(connection.execute(_CONTACT_ID, {"store_id": store_id, "email": email}).scalar_one()), False


def get_or_create_contact(session: Session, store_id: int, email: str, now: datetime, **fields: object) -> Contact:
    """The store's contact for `email` (normalized here), created with `fields` when new.

    Existing contacts only get fields they did not have, so a later, emptier event never erases a
    name we know.
    """
    email = normalize_email(email)
    contact = find_contact(session, store_id, email)
    if contact is None:
        contact = Contact(store_id=store_id, email=email, created_at=now, updated_at=now, **fields)
        session.add(contact)
        session.flush()
        return contact
    changed = False
    for key, value in fields.items():
        if value not in (None, "") and not getattr(contact, key):
            setattr(contact, key, value)
            changed = True
    if changed:
        contact.updated_at = now
    return contact


def update_traits(session: Session, contact_id: int, traits: Traits, now: datetime) -> None:
    """Apply identify traits to the contact: names by one UPDATE; a consent decision through apply_traits."""
    if traits.consent is not None and traits.consent_at is not None:
        apply_traits(session.get_one(Contact, contact_id), traits, now)
        return
    values: dict[str, object] = {name: getattr(traits, name) for name in ("first_name", "last_name", "timezone") if getattr(traits, name)}
    session.connection().execute(update(_contacts).where(_contacts.c.id == contact_id).values(**values, updated_at=now))
    expire_loaded(session, Contact, contact_id)


def apply_traits(contact: Contact, traits: Traits, now: datetime) -> None:
    """Update the contact from identify traits; consent follows the most recent decision by time."""
    for name in ("first_name", "last_name", "timezone"):
        value = getattr(traits, name)
        if value:
            setattr(contact, name, value)
    if traits.consent is not None and traits.consent_at is not None and (
        contact.consent_at is None or traits.consent_at >= contact.consent_at
    ):
        contact.consent = traits.consent
        contact.consent_source = traits.consent_source
        contact.consent_at = traits.consent_at
    contact.updated_at = now
