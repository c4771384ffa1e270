"""The periodic jobs: the engine tick (never two at once, thanks to a Redis lock), the track queue and daily housekeeping."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from redis.exceptions import LockError
from redis.lock import Lock
from sqlalchemy import delete
from sqlalchemy.orm import Session

from mailer.clock import utcnow
from mailer.engine import tick
from mailer.ingest.track_queue import drain, purge_given_up
from mailer.models import CapturedEmail
from mailer.tasks.dispatch import dispatch_budget_for, make_dispatcher
from mailer.tasks.names import APPLY_TRACK_QUEUE, HOUSEKEEPING, TICK

if TYPE_CHECKING:
    from mailer.tasks.app import MailerCelery
    from mailer.tasks.resources import ProcessResources

log = logging.getLogger(__name__)

TICK_LOCK_NAME = "mailer:tick"
# A tick that dies holding the lock blocks the next ones for this long at most; a live tick
# is stopped (task time limit) before its lock can expire, so two never overlap.
TICK_LOCK_SECONDS = 600
TICK_TIME_LIMIT = TICK_LOCK_SECONDS - 30

# A drain of the track queue stops between groups after this long: the next run goes on.
QUEUE_DRAIN_SECONDS = 20.0

# Captured emails (the dev outbox, no SMTP configured) are kept this long.
CAPTURED_KEEP_DAYS = 30


def run_tick(app: MailerCelery) -> dict[str, Any] | None:
    """One engine tick at the wall clock, dispatching on `app`; None when another tick is running."""
    resources = app.resources
    lock = Lock(resources.redis, TICK_LOCK_NAME, timeout=TICK_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        log.info("a tick is already running; skipping this one")
        return None
    try:
        report = tick(
            resources.database, resources.transport, resources.settings, utcnow(),
            dispatch=make_dispatcher(app), max_claims=dispatch_budget_for(app), clock=utcnow,
            drain_seconds=QUEUE_DRAIN_SECONDS,
        )
        return report.as_dict()
    finally:
        try:
            lock.release()
        except LockError:  # it expired (the tick ran too long); nothing of ours to release
            log.warning("the tick lock expired before the tick ended")


def purge_captured(session: Session, now: datetime, keep_days: int = CAPTURED_KEEP_DAYS) -> int:
    """Delete captured emails older than `keep_days`; returns how many went. Flushes."""
    result = session.execute(
        delete(CapturedEmail)
        .where(CapturedEmail.created_at < now - timedelta(days=keep_days))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def housekeeping(resources: ProcessResources) -> dict[str, int]:
    """The daily clean-up: old captured emails, old track bodies given up on (erasure removes a contact's rows at once)."""
    with resources.database.transaction() as session:
        captured = purge_captured(session, utcnow())
        given_up = purge_given_up(session, utcnow())
    log.info("housekeeping: %d captured emails and %d track bodies given up on deleted", captured, given_up)
    return {"captured_deleted": captured, "track_bodies_deleted": given_up}


def apply_track_queue(resources: ProcessResources) -> dict[str, int]:
    """Apply the queued snippet events (MAILER_INGEST_MODE=queued); processes share stores, one each at a time."""
    return asdict(drain(resources.database, max_seconds=QUEUE_DRAIN_SECONDS))


def _tick_task(task: Any) -> dict[str, Any] | None:
    return run_tick(task.app)


def _housekeeping_task(task: Any) -> dict[str, int]:
    return housekeeping(task.app.resources)


def _apply_track_queue_task(task: Any) -> dict[str, int]:
    return apply_track_queue(task.app.resources)


def register(app: MailerCelery) -> None:
    """Register the periodic tasks on `app`."""
    app.task(name=TICK, bind=True, time_limit=TICK_TIME_LIMIT)(_tick_task)
    app.task(name=HOUSEKEEPING, bind=True, time_limit=TICK_TIME_LIMIT)(_housekeeping_task)
    app.task(name=APPLY_TRACK_QUEUE, bind=True, time_limit=TICK_TIME_LIMIT)(_apply_track_queue_task)
