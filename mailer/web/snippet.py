"""`GET /snippet.js`: the tracking snippet stores embed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask, Response, request

SNIPPET = Path(__file__).resolve().parent / "static" / "snippet.js"
# Short enough that a fixed snippet reaches every store's visitors within minutes; the ETag makes
# the revalidation after that a cheap 304.
MAX_AGE_SECONDS = 300


def register_snippet(app: Flask) -> None:
    """Serve the committed, minified snippet with a short cache lifetime and an ETag."""
    # Read once: the file only changes with a deploy, and every store's every page view asks for it.
    body = SNIPPET.read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]

    @app.get("/snippet.js")
    def snippet() -> Response:
        response = Response(body, mimetype="application/javascript")
        response.set_etag(etag)
        response.cache_control.public = True
        response.cache_control.max_age = MAX_AGE_SECONDS
        # Visitors' browsers load it from every store's pages: nothing here depends on the caller.
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response.make_conditional(request)
