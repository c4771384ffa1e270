"""Settings read from MAILER_* environment variables, parsed strictly once at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mailer.errors import ConfigError

ENVIRONMENTS = ("development", "test", "production")
# inline: the snippet's requests are applied before the 202; queued: kept, then applied within
# about a second in bulk (mailer.ingest.track_queue), for sites whose traffic outruns inline.
INGEST_MODES = ("inline", "queued")


@dataclass(frozen=True)
class Settings:
    """Everything the process needs to know about its surroundings."""

    env: str
    instance_dir: Path
    database_url: str
    secret_key: str
    base_url: str
    redis_url: str | None = None
    smtp_url: str | None = None
    smtp_timeout: float = 30.0
    claim_lease_seconds: int = 120
    send_batch_size: int = 200
    tick_interval_seconds: float = 5.0
    # At most this many claims wait in Redis's `send` queue. Each claim's lease starts when it is
    # taken, so a queue deeper than the workers can empty within one lease only makes leases run
    # out: 20 × 200 messages (send_batch_size) ≈ 4,000 emails, well inside a 2-minute lease for one
    # worker process. Raise it (MAILER_DISPATCH_MAX_BATCHES) when you run many workers.
    dispatch_max_batches: int = 20
    ingest_mode: str = "inline"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def distributed(self) -> bool:
        """True when work goes through Celery on Redis rather than the in-process worker."""
        return self.redis_url is not None

    @property
    def queues_tracking(self) -> bool:
        """True when the snippet's requests are queued by the 202 and applied just after (MAILER_INGEST_MODE)."""
        return self.ingest_mode == "queued"

    @property
    def captures_email(self) -> bool:
        """True when no SMTP server is configured and emails are kept for the outbox page."""
        return self.smtp_url is None


def _positive_number(env: Mapping[str, str], name: str, default: float, *, whole: bool = False) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a {'whole ' if whole else ''}number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _checked_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ConfigError(f"{name} must start with one of {', '.join(s + '://' for s in schemes)}; got {value!r}")
    if not parts.netloc and not parts.scheme.startswith("sqlite"):
        raise ConfigError(f"{name} has no host: {value!r}")
    return value


def _secret_key(env: Mapping[str, str], mode: str, instance_dir: Path) -> str:
    """The signing key: required in production; in development kept in instance/ so links survive restarts."""
    configured = env.get("MAILER_SECRET_KEY", "")
    if configured:
        if len(configured) < 16:
            raise ConfigError("MAILER_SECRET_KEY must be at least 16 characters")
        return configured
    if mode == "production":
        raise ConfigError("MAILER_SECRET_KEY is required when MAILER_ENV=production")
    if mode == "test":
        return "test-secret-key-not-for-production"
    key_file = instance_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `env` (default: os.environ); `overrides` win, for tests and the CLI."""
    env = os.environ if env is None else env
    mode = env.get("MAILER_ENV", "development")
    if mode not in ENVIRONMENTS:
        raise ConfigError(f"MAILER_ENV must be one of {', '.join(ENVIRONMENTS)}; got {mode!r}")
    instance_dir = Path(env.get("MAILER_INSTANCE_DIR") or Path.cwd() / "instance").resolve()

    database_url = env.get("MAILER_DATABASE_URL") or f"sqlite:///{instance_dir / 'mailer.db'}"
    _checked_url("MAILER_DATABASE_URL", database_url, ("sqlite", "postgresql", "postgres", "postgresql+psycopg"))

    redis_url = env.get("MAILER_REDIS_URL") or None
    if redis_url:
        _checked_url("MAILER_REDIS_URL", redis_url, ("redis", "rediss"))
    smtp_url = env.get("MAILER_SMTP_URL") or None
    if smtp_url:
        _checked_url("MAILER_SMTP_URL", smtp_url, ("smtp", "smtps"))
    ingest_mode = env.get("MAILER_INGEST_MODE") or "inline"
    if ingest_mode not in INGEST_MODES:
        raise ConfigError(f"MAILER_INGEST_MODE must be one of {', '.join(INGEST_MODES)}; got {ingest_mode!r}")
    base_url = (env.get("MAILER_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    _checked_url("MAILER_BASE_URL", base_url, ("http", "https"))

    values: dict[str, object] = {
        "env": mode,
        "instance_dir": instance_dir,
        "database_url": database_url,
        "secret_key": _secret_key(env, mode, instance_dir),
        "base_url": base_url,
        "redis_url": redis_url,
        "smtp_url": smtp_url,
        "smtp_timeout": _positive_number(env, "MAILER_SMTP_TIMEOUT", 30.0),
        "claim_lease_seconds": int(_positive_number(env, "MAILER_CLAIM_LEASE_SECONDS", 120)),
        "send_batch_size": int(_positive_number(env, "MAILER_SEND_BATCH_SIZE", 200)),
        "tick_interval_seconds": _positive_number(env, "MAILER_TICK_INTERVAL", 5.0),
        "dispatch_max_batches": int(_positive_number(env, "MAILER_DISPATCH_MAX_BATCHES", 20, whole=True)),
        "ingest_mode": ingest_mode,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
