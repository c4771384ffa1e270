"""Single-use discount codes: `PREFIX-XXXXXXXX`, one per message, valid for a store-set number of days."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailer.models import Coupon, Message

# 32 symbols without 0/O, 1/I: 8 of them carry exactly 40 random bits and read aloud safely.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def new_coupon_code(prefix: str) -> str:
    """A fresh random code with the store's prefix."""
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{body}" if prefix else body


def issue_coupon(
    session: Session,
    message: Message,
    percent_off: int,
    now: datetime,
    valid_days: int,
    prefix: str,
) -> Coupon:
    """The message's coupon, created on first call; a retried send reuses the same code."""
    existing = session.scalar(select(Coupon).where(Coupon.message_id == message.id))
    if existing is not None:
        return existing
    coupon = Coupon(
        store_id=message.store_id,
        code=new_coupon_code(prefix),
        message_id=message.id,
        contact_id=message.contact_id,
        percent_off=percent_off,
        expires_at=now + timedelta(days=valid_days),
        created_at=now,
    )
    session.add(coupon)
    session.flush()
    return coupon


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
