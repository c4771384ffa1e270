"""A dashboard login belonging to one store, with a role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

ROLES = ("owner", "marketer")


class User(Base):
    """A person who logs in to the dashboard of one store."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("store_id", "email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    last_digest_at: Mapped[datetime | None]  # the daily task digest goes at most once a day
    created_at: Mapped[datetime]
