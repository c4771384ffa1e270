"""Recording an open or a click of a sent message, flagged human or machine by the pure rules.

These functions take a Core `Connection`, not a Session: the pixel and the click redirect run
them by the thousand in front of Flask (web/tracking_lane.py), where an ORM session's
bookkeeping cost more than the two statements; a Session's caller passes `session.connection()`.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection

from mailer.models import Link, Message, TrackingEvent
from mailer.tracking.machine import Verdict, classify_click, classify_open


class TouchedMessage(Protocol):
    """What recording a touch needs of a message: a Message row or a SentMessage tuple."""

    @property
    def id(self) -> int: ...  # noqa: D102
    @property
    def store_id(self) -> int: ...  # noqa: D102
    @property
    def contact_id(self) -> int: ...  # noqa: D102
    @property
    def sent_at(self) -> datetime | None: ...  # noqa: D102


class TouchedLink(Protocol):
    """What recording a click needs of a link: its id and kind (a honeypot is never a person)."""

    @property
    def id(self) -> int: ...  # noqa: D102
    @property
    def kind(self) -> str: ...  # noqa: D102


class SentMessage(NamedTuple):
    """The columns of a sent message that the tracking endpoints read."""

    id: int
    store_id: int
    contact_id: int
    sent_at: datetime | None


class ClickTarget(NamedTuple):
    """A tracked link with its message (`message` is None unless that message was sent)."""

    id: int
    url: str
    kind: str
    message: SentMessage | None


# The endpoints' statements are built once, with bound parameters: building a statement costs
# more Python than running it, and a reused one keeps its cache key and compiled SQL.
_messages, _links = Message.__table__, Link.__table__
_SENT_COLUMNS = (_messages.c.id, _messages.c.store_id, _messages.c.contact_id, _messages.c.sent_at, _messages.c.status)
_SENT_MESSAGE = select(*_SENT_COLUMNS).where(_messages.c.id == bindparam("message_id"))
_CLICK_TARGET = (
    select(_links.c.id.label("link_id"), _links.c.url, _links.c.kind, *_SENT_COLUMNS)
    .join_from(_links, _messages, _messages.c.id == _links.c.message_id)
    .where(_links.c.message_id == bindparam("message_id"), _links.c.position == bindparam("position"))
)
_INSERT_TOUCH = insert(TrackingEvent.__table__).inline()  # inline: no RETURNING of the id nobody reads


def sent_message(connection: Connection, message_id: int) -> SentMessage | None:
    """The message if it exists and was sent (opens of anything else are not recorded)."""
    row = connection.execute(_SENT_MESSAGE, {"message_id": message_id}).first()
    if row is None or row.status != "sent":
        return None
    return SentMessage(row.id, row.store_id, row.contact_id, row.sent_at)


def click_target(connection: Connection, message_id: int, position: int) -> ClickTarget | None:
    """The message's link at `position` (None when the message has no such link), in one query."""
    row = connection.execute(_CLICK_TARGET, {"message_id": message_id, "position": position}).first()
    if row is None:
        return None
    message = SentMessage(row.id, row.store_id, row.contact_id, row.sent_at) if row.status == "sent" else None
    return ClickTarget(row.link_id, row.url, row.kind, message)


def record_touch(
    connection: Connection,
    message: TouchedMessage,
    kind: str,
    *,
    now: datetime,
    user_agent: str,
    ip: str | None,
    link: TouchedLink | None = None,
    method: str = "GET",
) -> Verdict:
    """Store one open or click of `message` and return whether a machine made it."""
    since_sent = (now - message.sent_at).total_seconds() if message.sent_at else None
    if kind == "open":
        verdict = classify_open(user_agent, ip, since_sent)
    else:
        verdict = classify_click(user_agent, since_sent, honeypot=link is not None and link.kind == "honeypot", method=method)
    # One Core INSERT: the endpoints answer pixels and redirects by the thousand, never read it back.
    connection.execute(_INSERT_TOUCH, {
        "store_id": message.store_id, "message_id": message.id, "contact_id": message.contact_id, "kind": kind,
        "link_id": link.id if link else None, "machine": verdict.machine, "machine_reason": verdict.reason,
        "user_agent": user_agent[:500], "ip": (ip or "")[:64], "occurred_at": now,
    })
    return verdict
