"""The landing page: the ROI report for a date range (figures, chart, campaign table, CSV), or onboarding."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, cast

from flask import Response, g, render_template, request
from sqlalchemy import exists, select

from mailer.clock import utcnow
from mailer.models import Campaign, Contact, Message, Store
from mailer.reports.daily import daily_series
from mailer.reports.queries import build_report, default_range
from mailer.scheduling.planner import zone
from mailer.segments.queries import store_thresholds
from mailer.web.database import db_session, settings
from mailer.web.ui.auth import login_required
from mailer.web.ui.blueprint import bp
from mailer.web.ui.csv_export import report_rows, to_csv

MAX_RANGE_DAYS = 731  # two years: enough to compare seasons, bounded so a report stays quick
PRESETS = (7, 30, 90, 365)


def requested_range(today: date) -> tuple[date, date, str | None]:
    """The `from`/`to` of the query string (the 30 days up to `today` by default), and what was wrong with them."""
    default_start, default_end = default_range(datetime.combine(today, time(12)))
    raw_start, raw_end = request.args.get("from", ""), request.args.get("to", "")
    if not raw_start and not raw_end:
        return default_start, default_end, None
    try:
        start = date.fromisoformat(raw_start) if raw_start else default_start
        end = date.fromisoformat(raw_end) if raw_end else default_end
    except ValueError:
        return default_start, default_end, "Dates are written YYYY-MM-DD; showing the last 30 days."
    if start > end:
        start, end = end, start
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return end - timedelta(days=MAX_RANGE_DAYS - 1), end, f"A report covers at most {MAX_RANGE_DAYS} days; showing the last {MAX_RANGE_DAYS} up to {end}."
    return start, end, None


def is_new_store(store: Store) -> bool:
    """A store with no contact and no message yet: it needs setting up rather than a report."""
    session = db_session()
    has_contacts = session.scalar(select(exists().where(Contact.store_id == store.id)))
    has_messages = session.scalar(select(exists().where(Message.store_id == store.id)))
    return not has_contacts and not has_messages


def _steps(store: Store) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], int]]:
    """Step names and, for win-back steps, the tier's threshold in days, by (campaign key, step index)."""
    thresholds = store_thresholds(store)
    names: dict[tuple[str, int], str] = {}
    tiers: dict[tuple[str, int], int] = {}
    for campaign in db_session().scalars(select(Campaign).where(Campaign.store_id == store.id)):
        for step in campaign.steps:
            names[(campaign.key, step.index)] = step.name
            if step.tier is not None and 1 <= step.tier <= len(thresholds):
                tiers[(campaign.key, step.index)] = thresholds[step.tier - 1]
    return names, tiers


def _store_today(store: Store) -> date:
    # "Today" is the store's: a report run at 23:30 UTC in Sydney is already about tomorrow.
    return utcnow().astimezone(zone(store.timezone)).date()


@bp.get("/")
@login_required
def report() -> str:
    """Headline figures, the chart over time, the campaign → step → tier table, or the setup guide."""
    store: Store = g.store
    if is_new_store(store):
        return render_template("ui/onboarding.html", snippet_src=f"{settings().base_url}/snippet.js")
    today = _store_today(store)
    start, end, range_error = requested_range(today)
    data = build_report(db_session(), store, start, end)
    series = daily_series(db_session(), store, start, end)
    step_names, tier_of_step = _steps(store)
    chart: dict[str, Any] = {
        "currency": store.currency,
        "labels": [point.day.isoformat() for point in series],
        "sent": [point.sent for point in series],
        "opened": [point.opened for point in series],
        "clicked": [point.clicked for point in series],
        "revenue": [float(point.revenue) for point in series],
    }
    presets = [(days, today - timedelta(days=days - 1), today) for days in PRESETS]
    return render_template(
        "ui/report.html", report=data, chart=chart, start=start, end=end, range_error=range_error,
        presets=presets, step_names=step_names, tier_of_step=tier_of_step,
        campaign_names={campaign["key"]: campaign["name"] for campaign in cast(list[dict[str, Any]], data["campaigns"])},
        sent_anything=any(point.sent for point in series),
    )


@bp.get("/report.csv")
@login_required
def report_csv() -> Response:
    """The same report as CSV, every cell neutralized against spreadsheet formulas."""
    store: Store = g.store
    start, end, _error = requested_range(_store_today(store))
    data = build_report(db_session(), store, start, end)
    step_names, tier_of_step = _steps(store)
    body = to_csv(report_rows(data, step_names, tier_of_step))
    filename = f"report-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        body, mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
