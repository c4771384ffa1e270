"""`mailer demo` seeds a store whose report already tells a story, and a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailer.clock import utcnow
from mailer.delivery import CaptureTransport
from mailer.demo import seed_demo
from mailer.models import CapturedEmail, Store
from mailer.reports.queries import build_report


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_store_has_history_traffic_and_a_report(backend, committed_database, settings) -> None:
    now = utcnow()
    transport = CaptureTransport(committed_database)
    lines = seed_demo(committed_database, transport, settings, now)
    assert "created demo store" in lines[0]
    with committed_database.transaction() as session:
        store = session.scalar(select(Store))
        report = build_report(session, store, (now - timedelta(days=31)).date(), now.date())
        captured = session.scalar(select(func.count()).select_from(CapturedEmail))
    totals = report["totals"]
    assert totals["sent"] > 100 and totals["opened"] > 0 and totals["clicked"] > 0 and totals["converted"] > 0
    assert report["holdout"] is not None and report["reasons"]["total"] > 0
    assert captured >= totals["sent"]
    again = seed_demo(committed_database, transport, settings, now)
    assert "already exists" in again[0]
    with committed_database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CapturedEmail)) == captured
