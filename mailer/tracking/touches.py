"""Recording an open or a click of a sent message, flagged human or machine by the pure rules.

Each touch is one statement that reads the message (and link) as it writes: the pure rules give
every answer the message could call for (machine.open_verdicts, click_verdicts), and the
statement keeps the one that the message's sending time and the link's kind pick. The pixel and
the click redirect run them by the thousand in front of Flask (web/tracking_lane.py), so they
take a Core `Connection`, not a Session; a Session's caller passes `session.connection()`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, case, insert, literal, literal_column, select
from sqlalchemy.engine import Connection

from mailer.models import Link, Message, TrackingEvent
from mailer.tracking.machine import (
    CLICK_TOO_FAST_SECONDS,
    OPEN_TOO_FAST_SECONDS,
    ClickVerdicts,
    OpenVerdicts,
    click_verdicts,
    open_verdicts,
)

# The endpoints' statements are built once, with bound parameters: building a statement costs
# more Python than running it, and a reused one keeps its cache key and compiled SQL.
_messages, _links = Message.__table__, Link.__table__
_LINK_URL = select(_links.c.url).where(_links.c.message_id == bindparam("message_id"), _links.c.position == bindparam("position"))


def link_url(connection: Connection, message_id: int, position: int) -> str | None:
    """The URL of the message's link at `position`, or None when the message has no such link."""
    return connection.execute(_LINK_URL, {"message_id": message_id, "position": position}).scalar()


# One INSERT … SELECT per touch: the message (and link) is read by the statement that stores the
# touch, so the common case is one round trip. Its machine verdict is one of the pure rules'
# answers, picked by the row: the link's kind and whether it was sent too recently.
_touches = TrackingEvent.__table__
_TOUCH_COLUMNS = ["store_id", "message_id", "contact_id", "kind", "link_id", "machine", "machine_reason",
                  "user_agent", "ip", "occurred_at"]


def _sent_after(name: str) -> ColumnElement[bool]:
    return _messages.c.sent_at > bindparam(name, type_=_messages.c.sent_at.type)


def _picked(field: str, column: str, *choices: tuple[ColumnElement[bool], str], otherwise: str) -> ColumnElement[object]:
    kind = _touches.c[column].type
    return case(*((condition, bindparam(f"{name}_{field}", type_=kind)) for condition, name in choices),
                else_=bindparam(f"{otherwise}_{field}", type_=kind))


def _touch_values(kind: str, link_id: ColumnElement[object], *choices: tuple[ColumnElement[bool], str]) -> list[ColumnElement[object]]:
    return [
        _messages.c.store_id, _messages.c.id, _messages.c.contact_id, literal(kind), link_id,
        _picked("machine", "machine", *choices, otherwise="later"),
        _picked("reason", "machine_reason", *choices, otherwise="later"),
        *(bindparam(name, type_=_touches.c[name].type) for name in ("user_agent", "ip", "occurred_at")),
    ]


_RECORD_OPEN = insert(_touches).from_select(
    _TOUCH_COLUMNS,
    select(*_touch_values("open", literal(None), (_sent_after("too_soon_after"), "too_soon")))
    .where(_messages.c.id == bindparam("message_id"), _messages.c.status == "sent"),
).inline()
_RECORD_CLICK = (
    insert(_touches).from_select(
        _TOUCH_COLUMNS,
        select(*_touch_values("click", _links.c.id, (_links.c.kind == "honeypot", "honeypot"),
                              (_sent_after("too_soon_after"), "too_soon")))
        .join_from(_links, _messages, _messages.c.id == _links.c.message_id)
        .where(_links.c.message_id == bindparam("message_id"), _links.c.position == bindparam("position"),
               _messages.c.status == "sent"),
    )
    # The clicked link's URL, written out: SQLAlchemy neither correlates a subquery in RETURNING
    # nor qualifies its columns there (SQLite then finds `id` ambiguous).
    .returning(literal_column(f"(SELECT {_links.name}.url FROM {_links.name} WHERE {_links.name}.id = {_touches.name}.link_id)",
                              type_=_links.c.url.type))
)


def _touch_params(
    verdicts: OpenVerdicts | ClickVerdicts, *, too_fast_seconds: float, now: datetime, user_agent: str, ip: str | None,
) -> dict[str, object]:
    # The bound values both statements share: each verdict the row may pick (as `<name>_machine`
    # and `<name>_reason`), the instant before which a sending is "too soon", and who touched.
    params: dict[str, object] = {"too_soon_after": now - timedelta(seconds=too_fast_seconds),
                                 "user_agent": user_agent[:500], "ip": (ip or "")[:64], "occurred_at": now}
    for name, verdict in vars(verdicts).items():
        params[f"{name}_machine"], params[f"{name}_reason"] = verdict.machine, verdict.reason
    return params


def record_open(connection: Connection, message_id: int, *, now: datetime, user_agent: str, ip: str | None) -> None:
    """Store one open of `message_id` if that message was sent (one statement; nothing otherwise)."""
    connection.execute(_RECORD_OPEN, {
        "message_id": message_id,
        **_touch_params(open_verdicts(user_agent, ip), too_fast_seconds=OPEN_TOO_FAST_SECONDS, now=now,
                        user_agent=user_agent, ip=ip),
    })


def record_click(
    connection: Connection, message_id: int, position: int, *, now: datetime, user_agent: str, ip: str | None,
    method: str = "GET",
) -> str | None:
    """Store one click of the sent message's link at `position`; returns its URL, or None when nothing was stored.

    None means no such link, or a message that was not sent: link_url tells which.
    """
    return connection.execute(_RECORD_CLICK, {
        "message_id": message_id, "position": position,
        **_touch_params(click_verdicts(user_agent, method), too_fast_seconds=CLICK_TOO_FAST_SECONDS, now=now,
                        user_agent=user_agent, ip=ip),
    }).scalar()
