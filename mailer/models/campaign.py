"""A campaign of one store and its ordered steps, synced from campaigns/*.yaml."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, BigId

CAMPAIGN_KINDS = ("abandoned_cart", "winback")
AUDIENCES = ("one_time", "repeat", "all")


class Campaign(Base):
    """A store's copy of a campaign definition; marketers edit it, the engine reads it."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("store_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    audience: Mapped[str] = mapped_column(String(16), default="all")
    holdout_percent: Mapped[int] = mapped_column(default=0)
    # Higher goes first when two campaigns want the same contact (cart reminders over win-back).
    priority: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)
    definition_hash: Mapped[str] = mapped_column(String(64))
    edited: Mapped[bool] = mapped_column(default=False)  # edited here: YAML sync leaves it alone
    updated_at: Mapped[datetime]

    steps: Mapped[list[CampaignStep]] = relationship(
        order_by="CampaignStep.index", cascade="all, delete-orphan", lazy="selectin"
    )

    def step(self, index: int) -> CampaignStep:
        """The step with this 1-based index."""
        for step in self.steps:
            if step.index == index:
                return step
        raise KeyError(f"campaign {self.key!r} has no step {index}")


class CampaignStep(Base):
    """One email of a campaign: when it goes (delay + spread window), its discount and template."""

    __tablename__ = "campaign_steps"
    __table_args__ = (UniqueConstraint("campaign_id", "index"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    index: Mapped[int]
    name: Mapped[str] = mapped_column(String(200), default="")
    delay_minutes: Mapped[int] = mapped_column(default=0)
    window_minutes: Mapped[int] = mapped_column(default=0)  # due at delay + [0, window], per contact
    tier: Mapped[int | None]  # win-back: the lifecycle tier (1-based) this step is for
    discount_percent: Mapped[int] = mapped_column(default=0)
    subject: Mapped[str] = mapped_column(String(300))
    template: Mapped[str] = mapped_column(String(200))
    requires_consent: Mapped[bool] = mapped_column(default=True)
