"""The report page: its days add up to the report's totals, CSV cells are formula-safe, a new store gets a guide."""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import select

from mailer import create_app
from mailer.clock import utcnow
from mailer.models import Campaign, Store
from mailer.reports.daily import daily_series
from mailer.reports.queries import build_report
from mailer.stores import create_user
from mailer.web.ui.csv_export import neutralize
from tests.browser.dashboard_fixtures import PASSWORD, logged_in, seed_history
from tests.support.factories import T0, make_contact, make_store


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=HYPERLINK(\"http://evil.example\")", "'=HYPERLINK(\"http://evil.example\")"),
        ("+1+1", "'+1+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"),
        ("Abandoned cart", "Abandoned cart"), ("", ""), (None, ""), (12, "12"), (0.25, "0.25"),
    ],
)
def test_cells_a_spreadsheet_would_run_get_a_leading_quote(cell, shown) -> None:
    assert neutralize(cell) == shown


@pytest.fixture
def busy_store(session, database, settings) -> tuple[Flask, Store]:
    """A store with a month of seeded sends, opens, clicks and credited orders, and the app."""
    now = utcnow()
    store = make_store(session, now=now - timedelta(days=60))
    create_user(session, store_id=store.id, email="owner@shop.example", password=PASSWORD, role="owner", now=T0)
    seed_history(session, store, now, random.Random(3))
    session.commit()
    return create_app(settings, database), store


def test_the_days_add_up_to_the_reports_totals(busy_store, session) -> None:
    _app, store = busy_store
    end = utcnow().date()
    start = end - timedelta(days=29)
    report = build_report(session, store, start, end)
    days = daily_series(session, store, start, end)
    assert [day.day for day in days] == [start + timedelta(days=i) for i in range(30)]
    totals = report["totals"]
    assert sum(day.sent for day in days) == totals["sent"] > 0
    assert sum(day.opened for day in days) == totals["opened"] > 0
    assert sum(day.clicked for day in days) == totals["clicked"] > 0
    assert float(sum((day.revenue for day in days), Decimal("0"))) == totals["revenue"] > 0


def test_the_report_page_states_the_window_and_the_holdout(busy_store) -> None:
    app, _store = busy_store
    client, _token = logged_in(app, "owner@shop.example")
    page = client.get("/").get_data(as_text=True)
    assert "within <strong>5 days</strong>" in page
    assert 'id="report-chart-data"' in page and 'data-metric="lift"' in page
    assert "Win back lost customers" in page and "90+ days" in page  # campaign → step → tier
    odd = client.get("/?from=yesterday").get_data(as_text=True)
    assert "Dates are written YYYY-MM-DD" in odd


def test_the_csv_export_neutralises_every_cell(busy_store, database) -> None:
    app, store = busy_store
    with database.transaction() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
        assert campaign is not None
        campaign.name = '=HYPERLINK("http://evil.example","click")'
        campaign.step(1).name = "@SUM(1+1)"
    client, _token = logged_in(app, "owner@shop.example")
    response = client.get("/report.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["scope", "campaign", "campaign_name"]
    assert rows[1][0] == "total" and int(rows[1][6]) > 0
    cells = [cell for row in rows for cell in row]
    assert '\'=HYPERLINK("http://evil.example","click")' in cells and "'@SUM(1+1)" in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert {row[0] for row in rows[1:]} == {"total", "campaign", "step", "tier"}


def test_a_new_store_is_shown_how_to_start_and_a_store_with_contacts_its_report(session, database, settings) -> None:
    store = make_store(session)
    create_user(session, store_id=store.id, email="owner@new.example", password=PASSWORD, role="owner", now=T0)
    session.commit()
    app = create_app(settings, database)
    client, _token = logged_in(app, "owner@new.example")
    page = client.get("/").get_data(as_text=True)
    assert "Install the tracking snippet" in page and store.public_key in page
    assert f"mailer import orders --store {store.id} orders.csv" in page
    make_contact(session, store)
    session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "Install the tracking snippet" not in page and "No email went out between these dates" in page
