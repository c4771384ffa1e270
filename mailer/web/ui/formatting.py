"""Jinja filters for the dashboard: money, rates, counts, durations and times in the store's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g

from mailer.rendering.filters import money
from mailer.scheduling.planner import zone


def store_money(value: Any, currency: str | None = None) -> str:
    """An amount in the store's currency (or `currency`); None shows as a dash."""
    if value is None:
        return "—"
    store = g.get("store")
    return money(value, currency or (store.currency if store is not None else "USD"))


def rate(value: float | None, digits: int = 1) -> str:
    """A ratio as a percentage ("12.5 %"); None (nothing to divide by) as a dash."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f} %"


def points(value: float | None) -> str:
    """A difference of two rates in percentage points, signed ("+2.1 pts")."""
    if value is None:
        return "—"
    return f"{value * 100:+.1f} pts".replace("-", "−")


def number(value: int | None) -> str:
    """A whole number with thousands separators."""
    return "—" if value is None else f"{value:,}"


def times(value: float | None) -> str:
    """A return on investment as a multiple ("12.3×")."""
    return "—" if value is None else f"{value:,.1f}×"


def duration(minutes: int | None) -> str:
    """Minutes written the way campaign files write them: "0", "30m", "1d12h"."""
    if not minutes:
        return "0"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n)


def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC instant shown in the store's time zone; None as a dash."""
    if value is None:
        return "—"
    store = g.get("store")
    return value.astimezone(zone(store.timezone if store is not None else "UTC")).strftime(fmt)


def web_url(value: str | None) -> str | None:
    """The URL when it is an http(s) link, else None: visitor-sent `javascript:` never becomes a link."""
    if not value:
        return None
    try:
        scheme = urlsplit(value.strip()).scheme.lower()
    except ValueError:
        return None
    return value.strip() if scheme in ("http", "https") else None


def register_filters(app: Flask) -> None:
    """Make the filters available to every template."""
    app.jinja_env.filters.update(
        store_money=store_money, rate=rate, points=points, number=number, times=times,
        duration=duration, local=local, web_url=web_url,
    )
