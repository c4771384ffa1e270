"""One pass of the engine at a given `now`: sync campaigns, find who is due, plan, send."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.campaigns.carts import cart_stage
from mailer.campaigns.definitions import CampaignDefinition, load_definitions
from mailer.campaigns.sync import sync_campaigns
from mailer.campaigns.tasks import tasks_stage
from mailer.campaigns.winback import winback_stage
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Transport
from mailer.ingest.track_queue import drain
from mailer.models import Store
from mailer.outbox.compose import TemplateLibrary
from mailer.outbox.digest import send_digests
from mailer.outbox.process import BatchReport, process_claim
from mailer.scheduling.claim import Claim, claim_due

log = logging.getLogger(__name__)

# A stage looks at one store at `now` and plans what became due; it returns counts to report.
Stage = Callable[[Session, Store, datetime], dict[str, int]]


def sync_stage(session: Session, store: Store, now: datetime) -> dict[str, int]:
    """Bring the store's campaigns up to date with campaigns/*.yaml (read once per process)."""
    sync_campaigns(session, store, now, _definitions())
    return {}


@cache
def _definitions() -> dict[str, CampaignDefinition]:
    return load_definitions()


# The planning stages, in order: campaigns first, cart reminders before win-back (precedence).
STAGES: list[Stage] = [sync_stage, cart_stage, winback_stage, tasks_stage]


@dataclass
class TickReport:
    """What one tick did, for `mailer tick --json` and the logs."""

    now: str
    planned: dict[str, int] = field(default_factory=dict)
    claims: int = 0
    dispatched: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    digests: int = 0
    queued_applied: int = 0  # snippet events applied from the track queue first (MAILER_INGEST_MODE=queued)

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def plan(database: Database, now: datetime, stages: list[Stage] | None = None) -> dict[str, int]:
    """Run every planning stage for every store, one transaction per store."""
    totals: dict[str, int] = {}
    with database.transaction() as session:
        store_ids = list(session.scalars(select(Store.id).order_by(Store.id)))
    for store_id in store_ids:
        with database.transaction() as session:
            store = session.get(Store, store_id)
            if store is None:
                continue
            for stage in stages if stages is not None else STAGES:
                for key, value in stage(session, store, now).items():
                    totals[key] = totals.get(key, 0) + value
    return totals


def send_due_inline(
    database: Database, transport: Transport, settings: Settings, now: datetime, report: TickReport,
    *, clock: Callable[[], datetime] | None = None,
) -> None:
    """Claim and send due messages in this process until none is left at `now`."""
    library = TemplateLibrary()
    while True:
        with database.transaction() as session:
            # Leases run from the real time of the claim: planning a big wave can take longer
            # than a lease, and a claim born expired would be sent by nobody.
            claim_at = clock() if clock is not None else now
            claim = claim_due(session, claim_at, limit=settings.send_batch_size, lease_seconds=settings.claim_lease_seconds)
        if not claim.message_ids:
            return
        report.claims += 1
        batch = process_claim(database, transport, claim, settings=settings, now=now, clock=clock, library=library)
        _add_batch(report, batch)


def _add_batch(report: TickReport, batch: BatchReport) -> None:
    report.sent += batch.sent
    report.retry += batch.retry
    report.failed += batch.failed
    report.skipped += batch.skipped
    report.deferred += batch.deferred


# Hands a claim to the workers (distributed mode); returns how many messages it carried.
Dispatcher = Callable[[Claim], int]


def send_due_distributed(
    database: Database, settings: Settings, now: datetime, report: TickReport, dispatch: Dispatcher,
    *, max_claims: int | None = None, clock: Callable[[], datetime] | None = None,
) -> None:
    """Claim due messages and hand each claim to the workers; they send and record.

    `max_claims` is the backpressure: never claim more than the workers can send within a lease.
    """
    while max_claims is None or report.claims < max_claims:
        with database.transaction() as session:
            claim_at = clock() if clock is not None else now  # see send_due_inline
            claim = claim_due(session, claim_at, limit=settings.send_batch_size, lease_seconds=settings.claim_lease_seconds)
        if not claim.message_ids:
            return
        report.claims += 1
        report.dispatched += dispatch(claim)


def tick(
    database: Database,
    transport: Transport,
    settings: Settings,
    now: datetime,
    *,
    dispatch: Dispatcher | None = None,
    clock: Callable[[], datetime] | None = None,
    max_claims: int | None = None,
    drain_seconds: float | None = None,
) -> TickReport:
    """Apply the queued snippet events, plan everything due at `now`, then send it: inline, or through `dispatch` when given.

    Running it twice at the same `now` sends nothing new: planning is idempotent (unique keys) and
    sent rows are never claimed again. `drain_seconds` bounds the time spent applying the queue
    (a periodic task under a time limit; the next drain goes on).
    """
    report = TickReport(now=now.isoformat())
    # Queued snippet events first: a cart or an order still in the queue must count at `now`.
    drained = drain(database, max_seconds=drain_seconds)
    report.queued_applied = drained.accepted
    report.planned = plan(database, now)
    if dispatch is None:
        send_due_inline(database, transport, settings, now, report, clock=clock)
    else:
        send_due_distributed(database, settings, now, report, dispatch, max_claims=max_claims, clock=clock)
    report.digests = send_digests(database, transport, settings, now)
    log.info("tick %s", report.as_dict())
    return report
