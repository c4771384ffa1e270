"""Refuse to start on a Redis that may evict keys: an evicted queued task is a message never sent on time."""

from __future__ import annotations

import logging

import redis

from mailer.errors import ConfigError

log = logging.getLogger(__name__)

REQUIRED_POLICY = "noeviction"


def require_noeviction(redis_url: str, *, timeout: float = 10.0) -> str | None:
    """Raise ConfigError unless Redis reports `maxmemory-policy noeviction`; return the policy seen.

    Managed Redis services often disable or rename CONFIG: then we cannot tell, so we warn and
    go on (None) rather than refuse a setup that may well be right.
    """
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        try:
            reply = client.config_get("maxmemory-policy")
        except redis.ResponseError as exc:
            log.warning("cannot read Redis maxmemory-policy (%s); make sure it is %s", exc, REQUIRED_POLICY)
            return None
        except redis.ConnectionError as exc:
            raise ConfigError(f"cannot reach Redis at MAILER_REDIS_URL to check it: {exc}") from exc
    finally:
        client.close()
    policy = reply.get("maxmemory-policy")
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy is None:
        log.warning("Redis did not report maxmemory-policy; make sure it is %s", REQUIRED_POLICY)
        return None
    if policy != REQUIRED_POLICY:
        raise ConfigError(
            f"Redis maxmemory-policy is {policy!r}: queued tasks could be evicted and never run. "
            f"Set `maxmemory-policy {REQUIRED_POLICY}` in redis.conf (or CONFIG SET) and start again."
        )
    return policy
