"""`mailer run`'s scheduler thread: ticks on its interval and, in the queued ingest mode, applies the queue every second between."""

from __future__ import annotations

import dataclasses
import json

from sqlalchemy import func, select

from mailer import create_app
from mailer.db import Database
from mailer.models import Event
from mailer.web.server import Scheduler
from tests.ingest.helpers import identify, make_shop
from tests.support.waiting import wait_until


def test_the_scheduler_applies_queued_events_between_ticks(settings, committed_database: Database) -> None:
    database = committed_database
    queued = dataclasses.replace(settings, ingest_mode="queued", tick_interval_seconds=3600.0)
    shop = make_shop(database)
    client = create_app(queued, database).test_client()
    scheduler = Scheduler(queued, database)
    scheduler.start()
    try:
        wait_until(lambda: scheduler.ticks == 1, 20, "the first tick, which runs at start")
        body = json.dumps({"key": shop.public_key, "batch": [identify("s1", "ann@example.com")]})
        assert client.post("/api/v1/track", data=body, content_type="text/plain").status_code == 202

        def applied() -> bool:
            with database.transaction() as session:
                return bool(session.scalar(select(func.count()).select_from(Event).where(Event.store_id == shop.id)))

        wait_until(applied, 20, "the queued body applied (the next tick is an hour away)")
        assert scheduler.ticks == 1
    finally:
        scheduler.stop()
        scheduler.join(timeout=30)
    assert not scheduler.is_alive()

