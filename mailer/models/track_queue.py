"""A snippet request accepted but not yet applied (the track queue of the queued ingest mode), and who is applying a store's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId


class QueuedTrack(Base):
    """One `POST /api/v1/track` body as received, applied later in id order and then deleted."""

    __tablename__ = "track_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[datetime]
    # The body exactly as the snippet sent it: applying validates it again at `received_at`,
    # which gives the same verdicts the 202 answered.
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class TrackQueueLease(Base):
    """Who is applying a store's queue, until when: one drainer per store keeps its bodies in order."""

    __tablename__ = "track_queue_leases"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]
