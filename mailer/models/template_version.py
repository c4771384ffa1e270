"""A store's saved edit of an email template: the newest version per name replaces the file template."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId


class TemplateVersion(Base):
    """One saved version of a template (HTML and text); versions only accumulate, restores add one."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("store_id", "name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))  # "cart/step1", "base" for the layout
    version: Mapped[int]
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # The subject the editor previews and test-sends with; campaign steps keep their own.
    subject: Mapped[str | None] = mapped_column(String(300))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
