"""The beat table, in one place: what runs periodically, and how often."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery.schedules import crontab

from mailer.config import Settings
from mailer.ingest.track_queue import QUEUE_INTERVAL_SECONDS
from mailer.tasks.names import APPLY_TRACK_QUEUE, HOUSEKEEPING, TICK


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's `beat_schedule` for these settings."""
    interval = settings.tick_interval_seconds
    table: dict[str, dict[str, Any]] = {
        "engine-tick": {
            "task": TICK,
            "schedule": timedelta(seconds=interval),
            # A tick nobody ran in time is dropped, not queued up: the next one does its work.
            "options": {"expires": max(interval * 2, 10.0)},
        },
        "housekeeping": {
            "task": HOUSEKEEPING,
            "schedule": crontab(hour=3, minute=17),  # daily, off the hour when others run theirs
            "options": {"expires": 6 * 3600},
        },
    }
    if settings.queues_tracking:
        table["apply-track-queue"] = {
            "task": APPLY_TRACK_QUEUE,
            "schedule": timedelta(seconds=QUEUE_INTERVAL_SECONDS),
            # Each run drains what it finds; runs nobody took in time are dropped, not stacked.
            "options": {"expires": QUEUE_INTERVAL_SECONDS * 5},
        }
    return table
