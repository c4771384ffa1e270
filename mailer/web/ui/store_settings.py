"""Settings: store profile, sender and postal address, attribution window, costs and keys (owner only), the snippet."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from flask import flash, g, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from mailer.db import after_commit
from mailer.errors import ValidationError
from mailer.ingest.identity import normalize_email
from mailer.models import Store
from mailer.models.store import hash_secret, new_public_key, new_secret_key
from mailer.web.api.public_stores import public_stores
from mailer.web.database import db_session, settings
from mailer.web.ui.auth import login_required, owner_required
from mailer.web.ui.blueprint import bp

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$")
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_WINDOW_DAYS = 90
MAX_COST_PER_EMAIL = Decimal("10")
Errors = dict[str, str]


@cache
def time_zones() -> list[str]:
    """Every IANA time zone name, sorted, for the profile's select."""
    return sorted(available_timezones())


def _page(errors: Errors | None = None, values: dict[str, Any] | None = None, status: int = 200, **extra: Any) -> tuple[str, int]:
    store: Store = g.store
    shown = {
        "name": store.name, "domain": store.domain, "timezone": store.timezone, "currency": store.currency,
        "sender_name": store.sender_name, "sender_email": store.sender_email, "postal_address": store.postal_address,
        "attribution_window_days": store.setting("attribution_window_days"),
        "cost_per_email": store.setting("cost_per_email"),
    }
    shown.update(values or {})
    return render_template(
        "ui/settings.html", values=shown, errors=errors or {}, time_zones=time_zones(),
        snippet_src=f"{settings().base_url}/snippet.js", **extra,
    ), status


@bp.get("/settings")
@login_required
def store_settings() -> tuple[str, int]:
    """The settings page; a marketer sees neither the costs nor the keys."""
    return _page()


def _text(field: str, limit: int, errors: Errors, *, required: bool = True) -> str:
    value = (request.form.get(field) or "").strip()
    if required and not value:
        errors[field] = "required"
    elif len(value) > limit:
        errors[field] = f"at most {limit} characters"
    return value


@bp.post("/settings/profile")
@login_required
def save_profile() -> Response | tuple[str, int]:
    """The store's name, domain, time zone and currency."""
    errors: Errors = {}
    name = _text("name", 200, errors)
    domain = _text("domain", 253, errors).lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if "domain" not in errors and not _DOMAIN.match(domain):
        errors["domain"] = "a domain name such as shop.example.com"
    timezone = (request.form.get("timezone") or "").strip()
    if timezone not in time_zones():
        errors["timezone"] = "choose a time zone from the list"
    currency = (request.form.get("currency") or "").strip().upper()
    if not _CURRENCY.fullmatch(currency):
        errors["currency"] = "a three-letter ISO 4217 code such as USD or EUR"
    if errors:
        return _page(errors, dict(request.form), 422)
    store: Store = g.store
    store.name, store.domain, store.timezone, store.currency = name, domain, timezone, currency
    after_commit(db_session(), public_stores().clear)  # the snippet's endpoint checks links against the domain
    flash("Store profile saved.", "success")
    return redirect(url_for("ui.store_settings"))


@bp.post("/settings/sender")
@login_required
def save_sender() -> Response | tuple[str, int]:
    """Who emails come from and the postal address every marketing email must show."""
    errors: Errors = {}
    sender_name = _text("sender_name", 200, errors)
    sender_email = _text("sender_email", 254, errors)
    if "sender_email" not in errors:
        try:
            sender_email = normalize_email(sender_email)
        except ValidationError:
            errors["sender_email"] = "not an email address"
    postal_address = _text("postal_address", 500, errors)
    if errors:
        return _page(errors, dict(request.form), 422)
    store: Store = g.store
    store.sender_name, store.sender_email, store.postal_address = sender_name, sender_email, postal_address
    flash("Sender saved.", "success")
    return redirect(url_for("ui.store_settings"))


def _set(store: Store, key: str, value: Any) -> None:
    # A new dict, so the JSON column is seen as changed.
    store.settings = {**(store.settings or {}), key: value}


@bp.post("/settings/attribution")
@login_required
def save_attribution() -> Response | tuple[str, int]:
    """How many days after an email an order may be credited to it."""
    raw = (request.form.get("attribution_window_days") or "").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WINDOW_DAYS:
        return _page({"attribution_window_days": f"a whole number of days from 1 to {MAX_WINDOW_DAYS}"}, dict(request.form), 422)
    _set(g.store, "attribution_window_days", int(raw))
    flash("Attribution window saved; reports use it from now on.", "success")
    return redirect(url_for("ui.store_settings"))


@bp.post("/settings/costs")
@owner_required
def save_costs() -> Response | tuple[str, int]:
    """What one email costs to send, for the report's cost and ROI (owner only)."""
    raw = (request.form.get("cost_per_email") or "").strip()
    try:
        cost = Decimal(raw)
    except InvalidOperation:
        cost = Decimal("-1")
    if not cost.is_finite() or not Decimal("0") <= cost <= MAX_COST_PER_EMAIL:
        return _page({"cost_per_email": f"an amount from 0 to {MAX_COST_PER_EMAIL}, e.g. 0.001"}, dict(request.form), 422)
    _set(g.store, "cost_per_email", float(cost))
    flash("Cost per email saved.", "success")
    return redirect(url_for("ui.store_settings"))


@bp.post("/settings/keys")
@owner_required
def rotate_keys() -> Response | tuple[str, int]:
    """Replace the public and/or the secret key; a new secret key is shown this once and stored only hashed."""
    store: Store = g.store
    which = request.form.get("key")
    if which not in ("public", "secret"):
        return _page({"key": "choose the key to replace"}, status=422)
    if which == "public":
        store.public_key = new_public_key()
        after_commit(db_session(), public_stores().clear)  # this process forgets the old key at once
        flash("New public key: update the snippet on every page of your store now; the old key no longer works.", "success")
        return _page()
    secret = new_secret_key()
    store.secret_key_hash = hash_secret(secret)
    response = make_response(_page(new_secret_key=secret))
    response.headers["Cache-Control"] = "no-store"  # the only copy of the key: keep it out of caches
    return response
