"""`POST /api/v1/coupons/validate`: a store's checkout asks whether a code may be used."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from mailer.clock import utcnow
from mailer.errors import ValidationError
from mailer.ingest.payload import json_object
from mailer.rendering.coupons import coupon_status, find_coupon
from mailer.web.api.auth import secret_key_store
from mailer.web.api.body import read_body
from mailer.web.api.ratelimit import check_rate
from mailer.web.database import db_session

bp = Blueprint("api_coupons", __name__, url_prefix="/api/v1")

_KEYS = frozenset({"code"})


@bp.post("/coupons/validate")
def validate_coupon() -> Response:
    """`{"code"}` → `{"code", "status": valid|used|expired|unknown, "percent_off"?, "expires_at"?}`."""
    store = secret_key_store()
    check_rate("secret", f"store:{store.id}")
    data = json_object(read_body(), _KEYS)
    code = data.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 64 or not code.isprintable():
        raise ValidationError("code must be a string of 1 to 64 characters")
    now = utcnow()
    coupon = find_coupon(db_session(), store.id, code)  # scoped by store: another store's code is unknown
    answer: dict[str, object] = {"code": code.strip().upper(), "status": coupon_status(coupon, now)}
    if coupon is not None:
        answer["percent_off"] = coupon.percent_off
        answer["expires_at"] = coupon.expires_at.isoformat()
    return jsonify(answer)
