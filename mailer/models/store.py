"""A store (the tenant): its keys, identity, sender and settings."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailer.db import Base, BigId

# The defaults every store starts from; each key is a store setting (DESIGN §3).
DEFAULT_STORE_SETTINGS: dict[str, Any] = {
    "tier_thresholds": [90, 180, 360],
    "winback_audience": "one_time",
    "abandon_after_minutes": 30,
    "cart_reentry_hours": 24,
    "cart_first_reminder_without_consent": False,
    # Unknown consent: existing customers may get marketing about the store's own products
    # (the "soft opt-in" of ePrivacy/PECR); an explicit "denied" always wins.
    "soft_opt_in_customers": True,
    "frequency_cap_hours": 16,
    "quiet_hours": None,  # e.g. {"start": "21:00", "end": "08:00"}
    "coupon_valid_days": 14,
    "attribution_window_days": 5,
    "cost_per_email": 0.001,
    "max_winback_attempts": 4,  # win-back emails per lapse, follow-ups included
    "reason_rules": {},
    # Manager tasks for valuable lost customers: the top N % by total spent, or above an amount.
    "task_top_percent": 10,
    "task_min_spent": None,
    "task_assignee_email": None,  # default: the store's first owner
    "task_warm_days": 14,  # a customer who engaged lately: call again every 14 days
    "task_cold_days": 30,  # per-reason overrides of mailer.campaigns.reasons.DEFAULT_REASON_RULES
}


def hash_secret(value: str) -> str:
    """The stored form of a secret key: we keep only its SHA-256."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_public_key() -> str:
    """A public key for the snippet: `pk_` and 128 random bits."""
    return "pk_" + secrets.token_hex(16)


def new_secret_key() -> str:
    """A secret key for the server API: `sk_` and 192 random bits."""
    return "sk_" + secrets.token_hex(24)


class Store(Base):
    """One online shop; every other row carries its `store_id`."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_secret: Mapped[str] = mapped_column(String(128), default=lambda: secrets.token_hex(24))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    sender_email: Mapped[str] = mapped_column(String(255), default="")
    postal_address: Mapped[str] = mapped_column(Text, default="")
    coupon_prefix: Mapped[str] = mapped_column(String(12), default="BACK")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    def setting(self, key: str) -> Any:
        """A store setting, falling back to the product default."""
        return (self.settings or {}).get(key, DEFAULT_STORE_SETTINGS[key])

    def check_secret_key(self, candidate: str) -> bool:
        """Constant-time comparison of a presented secret key with the stored hash."""
        return secrets.compare_digest(hash_secret(candidate), self.secret_key_hash)

    @property
    def from_address(self) -> str:
        """The envelope and header sender: the configured one, else no-reply at the store's domain."""
        return self.sender_email or f"no-reply@{self.domain}"
