"""Single-use discount codes: `PREFIX-XXXXXXXX`, one per message, valid for a store-set number of days."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import Coupon, Message

# 32 symbols without 0/O, 1/I: 8 of them carry exactly 40 random bits and read aloud safely.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def new_coupon_code(prefix: str) -> str:
    """A fresh random code with the store's prefix."""
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{body}" if prefix else body


def issue_coupon(session: Session, message: Message, percent_off: int, now: datetime, valid_days: int, prefix: str) -> Coupon:
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
