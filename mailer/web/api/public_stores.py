"""The snippet's public keys resolved to a small store snapshot, cached per process for a few seconds.

Every snippet request names its store by public key; asking the database each time cost a
query per event. Keys change only when an owner rotates one (which clears this process's
cache at once); other processes follow within `TTL_SECONDS`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from mailer.models import Store

TTL_SECONDS = 10.0
_stores = Store.__table__
_BY_KEY = select(_stores.c.id, _stores.c.public_key, _stores.c.domain, _stores.c.currency).where(
    _stores.c.public_key == bindparam("public_key")
)
MAX_KEYS = 10_000


@dataclass(frozen=True)
class PublicStore:
    """What the snippet's endpoint needs of a store: who it is, its site and its currency."""

    id: int
    public_key: str
    domain: str
    currency: str


class PublicStoreCache:
    """Public key → PublicStore (or None for an unknown key), each answer kept for `ttl` seconds."""

    def __init__(self, ttl: float = TTL_SECONDS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._answers: dict[str, tuple[float, PublicStore | None]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session | Connection, public_key: str) -> PublicStore | None:
        """The store of `public_key`, from memory when asked within the last `ttl` seconds."""
        now = self.clock()
        cached = self._answers.get(public_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        connection = session.connection() if isinstance(session, Session) else session
        row = connection.execute(_BY_KEY, {"public_key": public_key}).first()
        answer = PublicStore(*row) if row is not None else None
        with self._lock:
            if len(self._answers) >= MAX_KEYS:  # a flood of made-up keys must not grow memory
                self._answers.clear()
            self._answers[public_key] = (now + self.ttl, answer)
        return answer

    def clear(self) -> None:
        """Forget every answer (after a key rotation)."""
        with self._lock:
            self._answers.clear()


def public_stores(app: Flask | None = None) -> PublicStoreCache:
    """The app's cache (default: the current app's; one per app, so two apps on two databases never share answers)."""
    extensions = (app or current_app).extensions
    cache: PublicStoreCache | None = extensions.get("mailer_public_stores")
    if cache is None:
        cache = extensions.setdefault("mailer_public_stores", PublicStoreCache())
    return cache
