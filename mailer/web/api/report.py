"""`GET /api/v1/report?from=&to=`: the store's report as JSON (the same as `mailer report --json`)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, jsonify, request

from mailer.clock import utcnow
from mailer.errors import ValidationError
from mailer.reports.queries import build_report, default_range
from mailer.web.api.auth import secret_key_store
from mailer.web.api.ratelimit import check_rate
from mailer.web.database import db_session

bp = Blueprint("api_report", __name__, url_prefix="/api/v1")


def _day(name: str, default: date) -> date:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a date like 2026-03-01, got {raw[:40]!r}") from exc


@bp.get("/report")
def report() -> Response:
    """Metrics per campaign, step and tier for the date range (default: the last 30 days)."""
    store = secret_key_store()
    check_rate("secret", f"store:{store.id}")
    default_start, default_end = default_range(utcnow())
    start, end = _day("from", default_start), _day("to", default_end)
    if start > end:
        raise ValidationError(f"from ({start}) is after to ({end})")
    if (end - start).days > 3660:
        raise ValidationError("the range may span at most ten years")
    return jsonify(build_report(db_session(), store, start, end))
