"""The open pixel and the click redirect, answered in front of Flask: the two URLs every sent email is hit on.

A campaign of 100k emails brings their opens and clicks back within minutes, and each answer is
one statement (tracking.touches: the touch stored by an INSERT that reads its message). Through
Flask's request cycle (context, cookie session, routing, the after-request hooks) and an ORM
session that small job cost twice its own work, so this WSGI middleware answers them itself, on
a Core connection of its own (Database.one_write). Anything else, and a click whose token or
link is not valid, goes on to Flask (which has no route for /t/c/ and answers its usual 404).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.urls import iri_to_uri

from mailer.clock import utcnow
from mailer.db import Database
from mailer.tracking.tokens import read_token
from mailer.tracking.touches import link_url, record_click, record_open

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
OPEN_PREFIX, CLICK_PREFIX = "/t/o/", "/t/c/"
_PIXEL_HEADERS = [
    ("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL))),
    ("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0"), ("Pragma", "no-cache"),
]
_READS = frozenset({"GET", "HEAD"})  # Flask's GET routes answer HEAD too; a HEAD click is flagged a machine


class TrackingLane:
    """WSGI middleware: answers GET/HEAD /t/o/<token> and valid GET/HEAD /t/c/<token>; passes the rest to `app`."""

    def __init__(self, app: WSGIApp, database: Database, secret_key: str) -> None:
        self.app = app
        self.database = database
        self.secret_key = secret_key

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Route one request: the pixel and valid clicks here, everything else to Flask."""
        path: str = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") in _READS:
            if path.startswith(OPEN_PREFIX) and "/" not in path[len(OPEN_PREFIX):]:
                return self._open(path[len(OPEN_PREFIX):], environ, start_response)
            if path.startswith(CLICK_PREFIX) and "/" not in path[len(CLICK_PREFIX):]:
                url = self._click(path[len(CLICK_PREFIX):], environ)
                if url is not None:
                    return _redirect(url, environ, start_response)
        return self.app(environ, start_response)

    def _open(self, token: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # The image goes out whatever happened while recording: a broken pixel helps nobody.
        try:
            found = read_token(self.secret_key, "open", token)
            if found is not None:
                with self.database.one_write() as connection:
                    record_open(connection, found[0], now=utcnow(), user_agent=environ.get("HTTP_USER_AGENT", ""),
                                ip=environ.get("REMOTE_ADDR"))
        except Exception:
            log.exception("recording open failed")
        start_response("200 OK", list(_PIXEL_HEADERS))
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [PIXEL]

    def _click(self, token: str, environ: dict[str, Any]) -> str | None:
        # The URL to redirect to, only ever one stored for that message; None lets Flask answer 404.
        found = read_token(self.secret_key, "click", token)
        if found is None:
            return None
        with self.database.one_write() as connection:
            url = record_click(connection, *found, now=utcnow(), user_agent=environ.get("HTTP_USER_AGENT", ""),
                               ip=environ.get("REMOTE_ADDR"), method=environ["REQUEST_METHOD"])
            if url is None:  # nothing stored: no such link, or its message was not sent (redirect all the same)
                url = link_url(connection, *found)
            return url


def _redirect(url: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # What Flask's redirect(url, 302) answers (the IRI made a URI, as werkzeug does), less the HTML body.
    start_response("302 Found", [("Location", iri_to_uri(url)), ("Content-Length", "0"), ("Content-Type", "text/plain")])
    return []
