"""The send task: rebuild one claim from ids and hand it to the outbox (one service call)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mailer.clock import parse_instant, utcnow
from mailer.outbox.process import process_claim
from mailer.scheduling.claim import Claim
from mailer.tasks.names import SEND_CLAIM

if TYPE_CHECKING:
    from mailer.tasks.app import MailerCelery

log = logging.getLogger(__name__)

# A sender stops this share of the lease before it ends, so its last send and checkpoint land
# before another dispatcher may take the rows over (and so clocks a little apart do no harm).
LEASE_MARGIN_SHARE = 0.2


def lease_margin(lease_seconds: int) -> timedelta:
    """How long before its lease ends a worker stops sending a claim."""
    return timedelta(seconds=lease_seconds * LEASE_MARGIN_SHARE)


def _ahead_by(margin: timedelta) -> Callable[[], datetime]:
    # process_claim stops once clock() reaches the lease: a clock `margin` ahead stops it that early.
    def clock() -> datetime:
        return utcnow() + margin

    return clock


def send_claim(task: Any, message_ids: list[int], token: str, lease_until: str, now: str | None = None) -> dict[str, int]:
    """Send the claim's rows still held under `token`; a re-delivered task finds none and does nothing.

    `now` is the engine's time when the tick was given one (`mailer tick --now`): rules and
    sent_at use it, and the wall clock is not compared with a lease computed from another time.
    Without it, the worker's clock is both `now` and the lease clock.
    """
    resources = task.app.resources
    claim = Claim(token=token, message_ids=tuple(message_ids), lease_until=parse_instant(lease_until))
    clock: Callable[[], datetime] | None = None
    if now is None:
        margin = lease_margin(resources.settings.claim_lease_seconds)
        at = utcnow()
        if at + margin >= claim.lease_until:
            # Waited in the queue past its lease: the rows are (or soon will be) reclaimed by a tick.
            log.warning("claim %s reached a worker after its lease; left to be reclaimed", token)
            return {}
        clock = _ahead_by(margin)
    else:
        at = parse_instant(now)
    report = process_claim(
        resources.database, resources.transport, claim,
        settings=resources.settings, now=at, clock=clock, library=resources.library,
    )
    return asdict(report)


def register(app: MailerCelery) -> None:
    """Register the send task on `app`; its hard time limit backs up the lease check."""
    settings = app.mailer_settings
    # process_claim stops before the lease ends; only a hung connection can outlive it, and
    # each SMTP command is bounded by smtp_timeout. Past this, the process is killed.
    limit = settings.claim_lease_seconds + 4 * settings.smtp_timeout + 60
    app.task(name=SEND_CLAIM, bind=True, time_limit=limit)(send_claim)
