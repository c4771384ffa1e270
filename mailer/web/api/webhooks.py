"""`POST /webhooks/shopify/<store_id>` and `POST /webhooks/woocommerce/<store_id>`: signed platform events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from mailer.clock import utcnow
from mailer.errors import Unauthorized, ValidationError
from mailer.ingest.apply import ingest_batch
from mailer.ingest.payload import parse_json
from mailer.ingest.webhooks import (
    is_woocommerce_ping,
    shopify_events,
    signature_valid,
    woocommerce_events,
)
from mailer.models import Store
from mailer.web.api.body import read_body
from mailer.web.api.ratelimit import check_rate
from mailer.web.database import db_session

bp = Blueprint("api_webhooks", __name__, url_prefix="/webhooks")


def _signed_store(store_id: int, body: bytes, signature: str | None) -> Store:
    # One answer for an unknown store and a bad signature: store ids are not worth probing.
    store = db_session().get(Store, store_id) if store_id < 2**63 else None  # ids are BIGINT
    if store is None or not signature_valid(store.webhook_secret, body, signature):
        raise Unauthorized("unknown store or wrong webhook signature")
    return store


def _ingest(
    store: Store, body: bytes, topic: str, mapper: Callable[[str, dict[str, Any]], list[dict[str, Any]]], source: str
) -> Response:
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise ValidationError("webhook body must be a JSON object")
    events = mapper(topic, payload)
    # 200 even when an event is refused: the platform would retry the same payload forever.
    result = ingest_batch(db_session(), store, events, now=utcnow(), public=False, source=source)
    return jsonify({"topic": topic, "ignored": not events, **result.as_json()})


@bp.post("/shopify/<int:store_id>")
def shopify(store_id: int) -> Response:
    """A Shopify webhook, signed with X-Shopify-Hmac-Sha256 over the raw body."""
    body = read_body()
    store = _signed_store(store_id, body, request.headers.get("X-Shopify-Hmac-Sha256"))
    check_rate("secret", f"store:{store.id}")
    return _ingest(store, body, request.headers.get("X-Shopify-Topic", ""), shopify_events, "shopify")


@bp.post("/woocommerce/<int:store_id>")
def woocommerce(store_id: int) -> Response:
    """A WooCommerce webhook, signed with X-WC-Webhook-Signature; its unsigned ping gets a plain 200."""
    body = read_body()
    if is_woocommerce_ping(body, request.content_type):
        return jsonify({"ok": True})  # nothing is stored, so nothing needs a signature
    store = _signed_store(store_id, body, request.headers.get("X-WC-Webhook-Signature"))
    check_rate("secret", f"store:{store.id}")
    return _ingest(store, body, request.headers.get("X-WC-Webhook-Topic", ""), woocommerce_events, "woocommerce")
