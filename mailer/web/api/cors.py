"""CORS for the snippet's endpoint: only the store's own site (and localhost in development) may read answers."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, g, request
from sqlalchemy import select

from mailer.ingest.schema import host_in_domain
from mailer.models import Store
from mailer.web.api.public_stores import PublicStore
from mailer.web.database import db_session, settings

_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def origin_host(origin: str | None) -> str | None:
    """The host of an `Origin` header when it is an http(s) origin, else None."""
    if not origin:
        return None
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host


def _local_allowed(host: str, env: str | None = None) -> bool:
    return host in _LOCAL_HOSTS and (env or settings().env) in ("development", "test")


def origin_allowed_for(store: Store | PublicStore, origin: str | None, *, env: str | None = None) -> bool:
    """True when a page at `origin` belongs to the store's domain (or is local in development).

    `env` is the settings' (default: the current app's).
    """
    host = origin_host(origin)
    return host is not None and (host_in_domain(host, store.domain) or _local_allowed(host, env))


def origin_of_any_store(origin: str | None) -> bool:
    """For preflights, which carry no key: is `origin` on some store's domain?"""
    host = origin_host(origin)
    if host is None:
        return False
    if _local_allowed(host):
        return True
    labels = host.lower().rstrip(".").split(".")
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)] or [host]
    return db_session().scalar(select(Store.id).where(Store.domain.in_(candidates)).limit(1)) is not None


def preflight_response() -> Response:
    """The answer to an OPTIONS preflight of the snippet's POST."""
    response = Response(status=204)
    origin = request.headers.get("Origin")
    if origin_of_any_store(origin):
        response.headers["Access-Control-Allow-Origin"] = origin or ""
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
    response.vary.add("Origin")
    return response


def add_cors_headers(response: Response) -> Response:
    """Let the store's pages read the answer (errors too); other origins get no CORS headers."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    store: Store | PublicStore | None = g.get("api_store")
    if store is not None and origin_allowed_for(store, origin):
        response.headers["Access-Control-Allow-Origin"] = origin or ""
    return response
