"""`POST /api/v1/track` in the queued ingest mode, answered in front of Flask: validate, queue, 202.

A busy store's snippet sends thousands of these a second. Inline, each one costs Flask's request
cycle and the events' application (1.8 ms of app CPU and 0.7 ms of PostgreSQL for one event, in
the bench); queued (mailer.ingest.track_queue) its answer needs only the body parsed and
validated and one INSERT, which this WSGI middleware does on a Core connection of its own, as
the pixel's lane does (0.37 and 0.14 ms). It answers exactly the 202 Flask's view would (same
JSON, same CORS headers). Anything else — another path or method, a body Flask must refuse (too
large, not JSON, unknown key), a request over its rate, one without a Content-Length — goes on to
Flask with its body, and Flask answers as it always does (queueing too, in this mode).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy.exc import DBAPIError

from mailer.clock import utcnow
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import MailerError
from mailer.ingest.payload import MAX_BODY_BYTES, batch_of, json_object
from mailer.ingest.track_queue import TRACK_KEYS, queue_batch
from mailer.web.api.auth import PUBLIC_KEY_SHAPE
from mailer.web.api.cors import origin_allowed_for
from mailer.web.api.public_stores import PublicStore, public_stores
from mailer.web.api.ratelimit import RateLimiter, rate_limiter

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

TRACK_PATH = "/api/v1/track"


class TrackLane:
    """WSGI middleware: answers a valid snippet POST by queueing it; passes everything else to `app`."""

    def __init__(self, app: WSGIApp, flask_app: Flask, database: Database, settings: Settings) -> None:
        self.app = app
        self.flask_app = flask_app
        self.database = database
        self.env = settings.env

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Queue a snippet request and answer 202, or hand the request on to Flask."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != TRACK_PATH:
            return self.app(environ, start_response)
        body = _read_body(environ)
        if body is None:  # no length, or over the limit: Flask reads (or refuses) it
            return self.app(environ, start_response)
        queued = self._queue(body)
        if queued is None:
            # Flask reads the body again, from the bytes already read.
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            return self.app(environ, start_response)
        answer, store = queued
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(answer))), ("Vary", "Origin")]
        origin = environ.get("HTTP_ORIGIN")
        if origin_allowed_for(store, origin, env=self.env):  # as add_cors_headers does for Flask's answers
            headers.append(("Access-Control-Allow-Origin", origin or ""))
        start_response("202 ACCEPTED", headers)
        return [answer]

    def _queue(self, body: bytes) -> tuple[bytes, PublicStore] | None:
        # The 202's body and the store, or None for a request Flask must answer.
        try:
            data = json_object(body, TRACK_KEYS)
            raw_events = batch_of(data)
            text = body.decode("utf-8-sig")
        except MailerError:
            return None
        key = data.get("key")
        if not isinstance(key, str) or not PUBLIC_KEY_SHAPE.fullmatch(key):
            return None
        try:
            with self.database.one_write() as connection:
                store = public_stores(self.flask_app).get(connection, key)
                if store is None or self.limiter.hit(store.public_key) is not None:
                    return None
                result = queue_batch(connection, store, raw_events, text, utcnow())
        except DBAPIError:  # Flask answers it (its own 500 when the database is down)
            log.exception("queueing a track request failed")
            return None
        # What Flask's jsonify writes: compact, sorted keys, ASCII, a newline.
        return (json.dumps(result.as_json(), separators=(",", ":"), sort_keys=True) + "\n").encode(), store

    @property
    def limiter(self) -> RateLimiter:
        """The app's public limiter (looked up each time: tests and deployments may replace it)."""
        return rate_limiter(self.flask_app, "public")


def _read_body(environ: dict[str, Any]) -> bytes | None:
    # The declared body, or None when there is no length or it is over the API's limit.
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return None
    if length < 0 or length > MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(length) if length else b""


def register_track_lane(app: Flask) -> None:
    """In the queued ingest mode, answer the snippet's POSTs in front of Flask (see TrackLane)."""
    settings: Settings = app.extensions["mailer_settings"]
    if settings.queues_tracking:
        app.wsgi_app = TrackLane(app.wsgi_app, app, app.extensions["mailer_db"], settings)  # type: ignore[method-assign]
