"""A follow-up task for a person at the store: call a valuable customer who went quiet."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

TASK_OUTCOMES = ("returned", "declined", "unreachable")


class ManagerTask(Base):
    """One task per contact and lapse; repeated on its cadence until closed with an outcome."""

    __tablename__ = "manager_tasks"
    __table_args__ = (
        UniqueConstraint("contact_id", "lapse_at"),
        Index("ix_manager_tasks_store_status_due", "store_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lapse_at: Mapped[datetime]  # the last order that started the lapse this task is about
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    warmth: Mapped[str] = mapped_column(String(8), default="cold")  # warm | cold
    outcome: Mapped[str | None] = mapped_column(String(16))
    due_at: Mapped[datetime]
    repeats: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
