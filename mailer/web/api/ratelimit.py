"""Per-key rate limits: an in-process token bucket behind a small interface a Redis one can replace."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from flask import Flask, Response, current_app, jsonify

from mailer.errors import RateLimited


@dataclass(frozen=True)
class Limit:
    """`rate` requests per second on average, up to `burst` at once."""

    rate: float
    burst: int


# The embedded defaults: a busy store's snippet, and a server backfilling as fast as it can.
PUBLIC_LIMIT = Limit(rate=50, burst=200)
SECRET_LIMIT = Limit(rate=200, burst=1000)


class RateLimiter(Protocol):
    """Decides whether one more request for a key may go now."""

    def hit(self, key: str) -> float | None:
        """None when the request may go; else the seconds to wait before one will."""
        ...


class TokenBucketLimiter:
    """Token buckets in process memory, one per key, safe across threads."""

    def __init__(self, limit: Limit, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Take a token for `key`; None when there was one, else the wait until there is."""
        rate, burst = self.limit.rate, float(self.limit.burst)
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                self._prune(now)
                return None
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate

    def _prune(self, now: float) -> None:
        # Buckets that have refilled carry no state: dropping them bounds memory under many keys.
        if len(self._buckets) <= self.max_keys:
            return
        rate, burst = self.limit.rate, self.limit.burst
        self._buckets = {k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * rate < burst}


class RetryLater(RateLimited):
    """Too many requests for one key; carries the wait for the Retry-After header."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many requests; retry after {self.retry_after} s")


_EXTENSION = "mailer_rate_limiters"


def register_rate_limits(app: Flask) -> None:
    """Install the default limiters and the 429 answer with its Retry-After header."""
    app.extensions[_EXTENSION] = {
        "public": TokenBucketLimiter(PUBLIC_LIMIT),
        "secret": TokenBucketLimiter(SECRET_LIMIT),
    }

    @app.errorhandler(RetryLater)
    def _too_many(exc: RetryLater) -> tuple[Response, int, dict[str, str]]:
        return jsonify({"error": exc.message}), 429, {"Retry-After": str(exc.retry_after)}


def use_limiter(app: Flask, kind: str, limiter: RateLimiter) -> None:
    """Replace the `public` or `secret` limiter (a Redis-backed one, or a small one in tests)."""
    app.extensions[_EXTENSION][kind] = limiter


def rate_limiter(app: Flask, kind: str) -> RateLimiter:
    """The app's `public` or `secret` limiter."""
    limiter: RateLimiter = app.extensions[_EXTENSION][kind]
    return limiter


def check_rate(kind: str, key: str) -> None:
    """Count one request for `key` against the `public` or `secret` limiter; 429 when over."""
    limiter = rate_limiter(current_app, kind)
    wait = limiter.hit(key)
    if wait is not None:
        raise RetryLater(wait)
