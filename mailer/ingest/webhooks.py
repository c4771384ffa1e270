"""Shopify and WooCommerce webhooks: signature checks, and mapping their payloads onto our events.

The mapped events go through the same validation and apply code as the server API, so a
webhook can do nothing an API call could not. Event ids come from the platform's ids, so the
platforms' retries are duplicates; a checkout's id includes its `updated_at`, so each update is new.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

SHOPIFY_TOPICS = ("orders/create", "checkouts/create", "checkouts/update")
WOOCOMMERCE_TOPICS = ("order.created",)
# WooCommerce orders in these states were never paid (or were abandoned drafts): not orders to us.
_WOO_NOT_ORDERS = ("failed", "cancelled", "trash", "checkout-draft")
_MAX_ITEMS = 200
_MAX_ID = 128
_WOO_PING = re.compile(rb"webhook_id=\d{1,20}")
# An order without an id is passed on as is, so validation rejects it visibly ("id: is required").
_MISSING_ID: dict[str, Any] = {"type": "track", "event": "order_placed"}


def signature_valid(secret: str, body: bytes, signature: str | None) -> bool:
    """True when `signature` is the base64 HMAC-SHA256 of the raw body under `secret` (constant time)."""
    if not signature or not secret:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace"))


def is_woocommerce_ping(body: bytes, content_type: str | None) -> bool:
    """WooCommerce's unsigned ping when a webhook is saved: a form body `webhook_id=<n>`."""
    return (content_type or "").startswith("application/x-www-form-urlencoded") and bool(_WOO_PING.fullmatch(body.strip()))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _id(value: object) -> str | None:
    """A platform id (number or string) as text; None when absent."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    return str(value) if isinstance(value, int | str) else None


def _event_id(*parts: str) -> str:
    # Ids are at most 128 characters; a longer composite is hashed rather than cut.
    joined = ":".join(parts)
    if len(joined) <= _MAX_ID:
        return joined
    return f"{parts[0]}:{hashlib.sha256(joined.encode()).hexdigest()}"


def _items(lines: list[Any], name_key: str) -> list[dict[str, Any]]:
    items = []
    for line in lines:
        line = _dict(line)
        quantity = line.get("quantity")
        if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity < 1:
            continue  # a removed or fully refunded line
        items.append({
            "sku": _id(line.get("sku")) or _id(line.get("variant_id")) or _id(line.get("product_id")),
            "name": line.get(name_key),
            "price": line.get("price"),
            "quantity": quantity,
        })
    return items[:_MAX_ITEMS]  # items only describe the order: the total is what counts


def _identify(event_id: str, email: object, timestamp: object, traits: dict[str, Any]) -> dict[str, Any] | None:
    traits = {k: v for k, v in traits.items() if v not in (None, "")}
    if not email or not traits:
        return None
    return {"id": event_id, "type": "identify", "email": email, "timestamp": timestamp, "traits": traits}


def _shopify_consent(customer: dict[str, Any]) -> dict[str, Any]:
    # Only explicit states count: "not_subscribed" is no decision, so soft opt-in may still apply.
    state = _dict(customer.get("email_marketing_consent")).get("state")
    if state == "subscribed":
        return {"consent": "granted", "consent_source": "shopify"}
    if state == "unsubscribed":
        return {"consent": "denied", "consent_source": "shopify"}
    return {}


def shopify_events(topic: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Our events for one Shopify webhook (an empty list for topics we do not use)."""
    customer = _dict(payload.get("customer"))
    email = payload.get("email") or customer.get("email") or payload.get("contact_email") or None
    names = {"first_name": customer.get("first_name"), "last_name": customer.get("last_name"), **_shopify_consent(customer)}
    if topic == "orders/create":
        order_id = _id(payload.get("id"))
        if order_id is None:
            return [_MISSING_ID]
        timestamp = payload.get("created_at") or payload.get("processed_at")
        codes = [_dict(code).get("code") for code in _list(payload.get("discount_codes"))]
        order = {
            "id": _event_id("shopify", "order", order_id),
            "type": "track",
            "event": "order_placed",
            "email": email,
            "timestamp": timestamp,
            "properties": {
                "order_id": order_id,
                "total": payload.get("total_price"),
                "currency": payload.get("currency"),
                "cart_id": _id(payload.get("cart_token")) or _id(payload.get("checkout_token")),
                "coupon": next((code for code in codes if code), None),
                "items": _items(_list(payload.get("line_items")), "title"),
            },
        }
        identify = _identify(_event_id("shopify", "order", order_id, "customer"), email, timestamp, names)
        return [e for e in (identify, order) if e is not None]
    if topic in ("checkouts/create", "checkouts/update"):
        token = _id(payload.get("token"))
        if token is None or not email or payload.get("completed_at"):
            return []  # nobody to remind, or already an order (orders/create converts the cart)
        updated_at = str(payload.get("updated_at") or payload.get("created_at") or "")
        timestamp = payload.get("updated_at") or payload.get("created_at")
        cart_id = _id(payload.get("cart_token")) or token
        base = _event_id("shopify", topic, token, updated_at)
        events: list[dict[str, Any]] = []
        identify = _identify(_event_id("shopify", topic, token, updated_at, "customer"), email, timestamp, names)
        if identify is not None:
            events.append(identify)
        events.append({
            "id": base,
            "type": "track",
            "event": "cart_updated",
            "email": email,
            "timestamp": timestamp,
            "properties": {
                "cart_id": cart_id,
                "currency": payload.get("presentment_currency") or payload.get("currency"),
                "value": payload.get("total_price"),
                "restore_url": payload.get("abandoned_checkout_url"),
                "items": _items(_list(payload.get("line_items")), "title"),
            },
        })
        if topic == "checkouts/create":
            events.append({
                "id": _event_id("shopify", "checkout_started", token),
                "type": "track",
                "event": "checkout_started",
                "email": email,
                "timestamp": payload.get("created_at") or timestamp,
                "properties": {"cart_id": cart_id},
            })
        return events
    return []


def woocommerce_events(topic: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Our events for one WooCommerce webhook (an empty list for topics and orders we do not use)."""
    if topic != "order.created" or payload.get("status") in _WOO_NOT_ORDERS:
        return []
    order_id = _id(payload.get("id"))
    if order_id is None:
        return [_MISSING_ID]
    billing = _dict(payload.get("billing"))
    email = billing.get("email") or None
    # date_created_gmt has no offset and is UTC, which is how timestamps without one are read.
    timestamp = payload.get("date_created_gmt") or payload.get("date_created")
    codes = [_dict(line).get("code") for line in _list(payload.get("coupon_lines"))]
    identify = _identify(
        _event_id("woocommerce", "order", order_id, "customer"), email, timestamp,
        {"first_name": billing.get("first_name"), "last_name": billing.get("last_name")},
    )
    order = {
        "id": _event_id("woocommerce", "order", order_id),
        "type": "track",
        "event": "order_placed",
        "email": email,
        "timestamp": timestamp,
        "properties": {
            "order_id": order_id,
            "total": payload.get("total"),
            "currency": payload.get("currency"),
            "coupon": next((code for code in codes if code), None),
            "items": _items(_list(payload.get("line_items")), "name"),
        },
    }
    return [e for e in (identify, order) if e is not None]
