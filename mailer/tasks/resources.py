"""What one worker process holds: settings, and a Database, Transport and Redis client made on first use."""

from __future__ import annotations

import logging
import weakref
from typing import Any

import redis
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown
from sqlalchemy import Engine

from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Transport, transport_from_settings
from mailer.outbox.compose import TemplateLibrary

log = logging.getLogger(__name__)


class ProcessResources:
    """Connections for the tasks of one process; nothing is opened before a task needs it.

    The prefork pool forks children from the main worker process: a connection opened before the
    fork would be shared by every child, so each child drops what it inherited (`after_fork`).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._database: Database | None = None
        self._transport: Transport | None = None
        self._redis: redis.Redis | None = None
        self._library: TemplateLibrary | None = None
        _LIVE.add(self)

    @property
    def database(self) -> Database:
        """This process's Database (engine and pool), created on first use."""
        if self._database is None:
            self._database = Database.from_url(self.settings.database_url)
        return self._database

    @property
    def transport(self) -> Transport:
        """This process's transport (SMTP connections are opened per thread on first send)."""
        if self._transport is None:
            self._transport = transport_from_settings(self.settings, self.database)
        return self._transport

    @property
    def redis(self) -> redis.Redis:
        """A Redis client on MAILER_REDIS_URL, for locks and queue depth."""
        if self._redis is None:
            if not self.settings.redis_url:
                raise RuntimeError("distributed mode needs MAILER_REDIS_URL")
            self._redis = redis.Redis.from_url(self.settings.redis_url, socket_timeout=10, socket_connect_timeout=10)
        return self._redis

    @property
    def library(self) -> TemplateLibrary:
        """Compiled templates, kept for the life of the process (each is inlined once)."""
        if self._library is None:
            self._library = TemplateLibrary()
        return self._library

    def after_fork(self) -> None:
        """Forget connections inherited from the parent without closing them (they are the parent's)."""
        if self._database is not None and isinstance(self._database.engine, Engine):
            # close=False: the sockets belong to the parent; closing them here would break it.
            self._database.engine.dispose(close=False)
        self._database = None
        self._transport = None  # SMTPTransport also refuses inherited sockets; start clean anyway
        self._redis = None
        self._library = None

    def close(self) -> None:
        """Close everything this process opened; safe to call twice, and usable again afterwards."""
        transport, self._transport = self._transport, None
        if transport is not None:
            close_all = getattr(transport, "close_all", None)
            try:
                close_all() if close_all is not None else transport.close()
            except Exception:  # shutting down: a failed QUIT must not hide the rest
                log.warning("closing the transport failed", exc_info=True)
        database, self._database = self._database, None
        if database is not None:
            database.dispose()
        client, self._redis = self._redis, None
        if client is not None:
            client.close()


# Every ProcessResources of this process, so the worker signals below reach them all.
_LIVE: weakref.WeakSet[ProcessResources] = weakref.WeakSet()


@worker_process_init.connect(weak=False)
def _reset_after_fork(**_kwargs: Any) -> None:
    for resources in list(_LIVE):
        resources.after_fork()


@worker_process_shutdown.connect(weak=False)
@worker_shutdown.connect(weak=False)
def _close_at_shutdown(**_kwargs: Any) -> None:
    for resources in list(_LIVE):
        resources.close()
