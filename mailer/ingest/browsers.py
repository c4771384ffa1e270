"""A browser's anonymous id and the contact it identified as: the lookup, and the merge that moves its history.

A browser shared by two people follows whoever identified last; what the first one did stays
theirs. The lookup also gives the owner's email: once a visitor has identified, the snippet
sends that email with every event, and an event whose email is its browser owner's needs no
identifying (see apply.claimed_contact). The statements are built once with bound parameters
(building one costs more Python than running it): the snippet runs them on most requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from mailer.db import expire_loaded, insert_ignoring_conflicts
from mailer.models import AnonymousId, Cart, Contact, Event

anonymous_id_table = AnonymousId.__table__
_events, _carts, _contacts = Event.__table__, Cart.__table__, Contact.__table__
_THIS_BROWSER = (anonymous_id_table.c.store_id == bindparam("store_id")) & (anonymous_id_table.c.anonymous_id == bindparam("anonymous_id"))
_OWNERS = (  # a browser's contact and that contact's email, by the contact's primary key: no second round trip
    select(anonymous_id_table.c.anonymous_id, anonymous_id_table.c.contact_id, _contacts.c.email)
    .join_from(anonymous_id_table, _contacts, _contacts.c.id == anonymous_id_table.c.contact_id)
)
_BROWSER = _OWNERS.where(_THIS_BROWSER)
_BROWSER_OWNER = select(anonymous_id_table.c.contact_id).where(_THIS_BROWSER)
_FOLLOW_BROWSER = (
    update(anonymous_id_table)
    .where(anonymous_id_table.c.store_id == bindparam("in_store"), anonymous_id_table.c.anonymous_id == bindparam("browser"))
    .values(contact_id=bindparam("new_contact_id"))
)
_MOVE_CARTS = (
    update(_carts)
    .where(_carts.c.store_id == bindparam("in_store"), _carts.c.anonymous_id == bindparam("browser"),
           _carts.c.contact_id.is_(None))
    .values(contact_id=bindparam("new_contact_id"))
    .returning(_carts.c.id)
)
_MOVE_EVENTS = (
    update(_events)
    .where(_events.c.store_id == bindparam("in_store"), _events.c.anonymous_id == bindparam("browser"),
           _events.c.contact_id.is_(None))
    .values(contact_id=bindparam("new_contact_id"))
)


class Owner(NamedTuple):
    """The contact a browser identified as (the last one, when it was shared), and that contact's email."""

    contact_id: int
    email: str


def owners_of_browsers(session: Session, store_id: int, anonymous_ids: set[str]) -> dict[str, Owner]:
    """anonymous id → its owner, for the browsers among `anonymous_ids` that identified before (one statement)."""
    if not anonymous_ids:
        return {}
    # A snippet's batch comes from one browser: that statement is built once (see _BROWSER).
    if len(anonymous_ids) == 1:
        rows = session.connection().execute(_BROWSER, {"store_id": store_id, "anonymous_id": next(iter(anonymous_ids))})
    else:
        rows = session.connection().execute(_OWNERS.where(
            anonymous_id_table.c.store_id == store_id, anonymous_id_table.c.anonymous_id.in_(sorted(anonymous_ids))
        ))
    return {anonymous_id: Owner(contact_id, email) for anonymous_id, contact_id, email in rows}


def merge_anonymous(session: Session, store_id: int, anonymous_id: str, contact_id: int, now: datetime) -> bool:
    """Attach the anonymous id to the contact and move its not-yet-owned carts and events over.

    A browser shared by two people follows whoever identified last; what the first one did
    stays theirs. Returns False when the browser was the contact's already (nothing moved).
    """
    connection = session.connection()
    new_browser = insert_ignoring_conflicts(
        session, AnonymousId,
        [{"store_id": store_id, "anonymous_id": anonymous_id, "contact_id": contact_id, "created_at": now}],
    ) == 1
    if not new_browser:
        owner = connection.execute(_BROWSER_OWNER, {"store_id": store_id, "anonymous_id": anonymous_id}).scalar()
        if owner == contact_id:
            return False  # merged before: later anonymous events were given the contact as they arrived
        # Someone else's browser: it follows whoever identified last.
        connection.execute(_FOLLOW_BROWSER, {"in_store": store_id, "browser": anonymous_id, "new_contact_id": contact_id})
    moved_carts = connection.execute(_MOVE_CARTS, {"in_store": store_id, "browser": anonymous_id, "new_contact_id": contact_id})
    for (cart_id,) in moved_carts:
        expire_loaded(session, Cart, cart_id)
    connection.execute(_MOVE_EVENTS, {"in_store": store_id, "browser": anonymous_id, "new_contact_id": contact_id})
    return True
