"""`POST /api/v1/track` (the snippet, public key, CORS) and `POST /api/v1/events` (servers, secret key)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mailer.clock import utcnow
from mailer.db import commit_each_statement
from mailer.ingest.apply import apply_batch, ingest_batch, validate_batch
from mailer.ingest.payload import batch_of, json_object
from mailer.ingest.track_queue import TRACK_KEYS, queue_batch
from mailer.web.api.auth import public_key_store, secret_key_store
from mailer.web.api.body import read_body
from mailer.web.api.cors import add_cors_headers, preflight_response
from mailer.web.api.ratelimit import check_rate
from mailer.web.database import db_session, settings

bp = Blueprint("api_events", __name__, url_prefix="/api/v1")

_EVENTS_KEYS = frozenset({"batch"})


@bp.route("/track", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def track() -> Response | tuple[Response, int]:
    """The snippet's batch: `{"key": "pk_…", "batch": [...]}`, as JSON or a text/plain beacon."""
    if request.method == "OPTIONS":  # the CORS preflight of a fetch with a JSON content type
        return preflight_response()
    # The key is inside the body, so the size check is all that can come before reading it.
    body = read_body()
    data = json_object(body, TRACK_KEYS)
    store = public_key_store(data.get("key"))
    check_rate("public", store.public_key)
    now = utcnow()
    if settings().queues_tracking:  # what the lane in front answers; here for the requests it passes on (chunked bodies)
        result = queue_batch(db_session().connection(), store, batch_of(data), body.decode("utf-8-sig"), now)
        return jsonify(result.as_json()), 202
    batch = validate_batch(store, batch_of(data), now=now, public=True)
    session = db_session()
    if batch.only_plain_views:  # the snippet's commonest request: stored by one INSERT, nothing else to apply
        commit_each_statement(session)
    result = apply_batch(session, batch, now, own_transaction=True)
    return jsonify(result.as_json()), 202


@bp.after_request
def _cors(response: Response) -> Response:
    if request.endpoint == "api_events.track":
        return add_cors_headers(response)
    return response


@bp.post("/events")
def events() -> tuple[Response, int]:
    """A server's batch: `Authorization: Bearer sk_…`, body `{"batch": [...]}`; history is welcome."""
    store = secret_key_store()  # key and rate first: an unknown caller's body is never read
    check_rate("secret", f"store:{store.id}")
    data = json_object(read_body(), _EVENTS_KEYS)
    batch = batch_of(data)
    result = ingest_batch(db_session(), store, batch, now=utcnow(), public=False, own_transaction=True)
    return jsonify(result.as_json()), 202
