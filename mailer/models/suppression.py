"""Addresses that must never be mailed again, kept as hashes so erasure leaves no email behind."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "erased")


def email_hash(normalized_email: str) -> str:
    """The SHA-256 of a normalized email: how suppressions name an address."""
    return hashlib.sha256(normalized_email.encode()).hexdigest()


class Suppression(Base):
    """One suppressed address per store; the first reason recorded stays."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("store_id", "email_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    email_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
