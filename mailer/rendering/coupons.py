"""Single-use discount codes: `PREFIX-XXXXXXXX`, one per message, valid for a store-set number of days."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailer.db import among, is_postgresql, recordset, recordset_rows
from mailer.models import Coupon, Message

# 32 symbols without 0/O, 1/I: 8 of them carry exactly 40 random bits and read aloud safely.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
_CODE_BYTES = 5
assert len(CODE_ALPHABET) == 32 and CODE_LENGTH * 5 == _CODE_BYTES * 8


def new_coupon_code(prefix: str) -> str:
    """A fresh random code with the store's prefix."""
    # One read of 40 random bits, 5 per symbol (the alphabet has exactly 32): the same uniform
    # draw as a secrets.choice per symbol, without 8 calls into the OS for each code.
    bits = int.from_bytes(secrets.token_bytes(_CODE_BYTES))
    body = "".join(CODE_ALPHABET[(bits >> (5 * index)) & 31] for index in range(CODE_LENGTH))
    return f"{prefix}-{body}" if prefix else body


@dataclass(frozen=True, slots=True)
class IssuedCoupon:
    """What an email shows of its coupon (a row, not an entity the session tracks)."""

    message_id: int
    code: str
    percent_off: int
    expires_at: datetime


@dataclass(frozen=True)
class CouponRequest:
    """A message that needs a coupon: its percentage, validity and the store's prefix."""

    message: Message
    percent_off: int
    valid_days: int
    prefix: str


_ISSUED = tuple(Coupon.__table__.c[name] for name in ("message_id", "code", "percent_off", "expires_at"))


def issue_coupons(session: Session, requests: list[CouponRequest], now: datetime) -> dict[int, IssuedCoupon]:
    """Each message's coupon by message id: existing ones reused (a retried send keeps its code),
    new ones created with codes checked unused in one query and inserted in one statement.
    """
    if not requests:
        return {}
    ids = [r.message.id for r in requests]
    coupons = {
        row.message_id: IssuedCoupon(*row)
        for row in session.execute(select(*_ISSUED).where(among(session, Coupon.message_id, ids)))
    }
    missing = [r for r in requests if r.message.id not in coupons]
    codes = {r.message.id: new_coupon_code(r.prefix) for r in missing}
    while codes:
        # 40 random bits collide rarely, but a store with a million codes will meet one: redraw those.
        taken = set(session.scalars(select(Coupon.code).where(among(session, Coupon.code, list(codes.values())))))
        seen: set[str] = set()
        clashes = []
        for message_id, code in codes.items():
            if code in taken or code in seen:
                clashes.append(message_id)
            seen.add(code)
        if not clashes:
            break
        for message_id in clashes:
            codes[message_id] = new_coupon_code(next(r.prefix for r in missing if r.message.id == message_id))
    if missing:
        # One INSERT … RETURNING for the batch (the unit of work would send one per coupon); Core
        # rows, not entities: building 200 ORM objects per batch cost more than the INSERT.
        rows = [
            {
                "store_id": request.message.store_id,
                "code": codes[request.message.id],
                "message_id": request.message.id,
                "contact_id": request.message.contact_id,
                "percent_off": request.percent_off,
                "expires_at": now + timedelta(days=request.valid_days),
                "created_at": now,
            }
            for request in missing
        ]
        for row in session.execute(*_insert_returning(session, rows)):
            coupons[row.message_id] = IssuedCoupon(*row)
    return coupons


_COUPONS = Coupon.__table__
_COLUMNS = ("store_id", "code", "message_id", "contact_id", "percent_off", "expires_at", "created_at")
# PostgreSQL: INSERT … SELECT from the batch's JSON rows, a statement built once whose text stays
# the same whatever the batch size (the multi-row VALUES form is re-parsed by the driver each time).
_ROWS = recordset(_COUPONS, _COLUMNS)
_INSERT_ROWS = insert(_COUPONS).from_select(_COLUMNS, select(*(_ROWS.c[name] for name in _COLUMNS))).returning(*_ISSUED)


def _insert_returning(session: Session, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The INSERT … RETURNING (the `_ISSUED` columns) of the batch and its parameters, for `session.execute`."""
    if not is_postgresql(session):
        return insert(_COUPONS).returning(*_ISSUED), rows
    return _INSERT_ROWS, {"rows": recordset_rows(rows)}


def coupon_status(coupon: Coupon | None, now: datetime) -> str:
    """`valid`, `used`, `expired` or `unknown` — what a store's checkout is told about a code."""
    if coupon is None:
        return "unknown"
    if coupon.redeemed_at is not None:
        return "used"
    if now >= coupon.expires_at:
        return "expired"
    return "valid"


def find_coupon(session: Session, store_id: int, code: str) -> Coupon | None:
    """The store's coupon with this code (case and surrounding spaces ignored)."""
    return session.scalar(
        select(Coupon).where(Coupon.store_id == store_id, Coupon.code == code.strip().upper())
    )


def redeem_coupon(
    session: Session, store_id: int, code: str, order_id: int, placed_at: datetime
) -> str:
    """Redeem a code for an order; returns the status it had (`valid` means this order redeemed it).

    A second use, an expired or an unknown code is not redeemed; the caller flags it on the order.
    The conditional UPDATE makes two orders racing for one code end with exactly one winner.
    """
    coupon = find_coupon(session, store_id, code)
    status = coupon_status(coupon, placed_at)
    if status != "valid" or coupon is None:
        return status
    result = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.redeemed_at.is_(None))
        .values(redeemed_at=placed_at, order_id=order_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return "used"
    session.refresh(coupon)
    return "valid"
