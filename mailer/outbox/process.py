"""Send one claim end to end: prepare (one transaction), deliver, record in checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Transport
from mailer.errors import DeliveryError, PermanentDeliveryError
from mailer.outbox.compose import TemplateLibrary
from mailer.outbox.finish import Outcome, record_outcomes
from mailer.outbox.prepare import prepare_claim
from mailer.scheduling.claim import Claim
from mailer.tally import Tally

log = logging.getLogger(__name__)

# Results are committed every this many sends: a worker killed mid-batch re-sends at most these.
CHECKPOINT_EVERY = 25


@dataclass
class BatchReport(Tally):
    """What happened to the messages of one claim."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0


def process_claim(
    database: Database,
    transport: Transport,
    claim: Claim,
    *,
    settings: Settings,
    now: datetime,
    clock: Callable[[], datetime] | None = None,
    library: TemplateLibrary | None = None,
) -> BatchReport:
    """Deliver the claim's messages exactly once each, barring a crash between SMTP 250 and commit.

    `now` is the engine's time (rules, due dates); `clock` the wall clock used to stop before the
    lease runs out, so another dispatcher never sends a row while we still hold it.
    """
    library = library or TemplateLibrary()
    report = BatchReport()
    with database.transaction() as session:
        prepared = prepare_claim(session, claim, settings=settings, now=now, library=library)
    report.skipped, report.deferred, report.failed = prepared.skipped, prepared.deferred, prepared.failed

    pending: list[Outcome] = []

    def checkpoint() -> None:
        if not pending:
            return
        with database.transaction() as session:
            counts = record_outcomes(session, claim, pending, now)
        report.sent += counts["sent"]
        report.retry += counts["retry"]
        report.failed += counts["failed"]
        pending.clear()

    ready = prepared.ready
    try:
        for index, email in enumerate(ready):
            if clock is not None and clock() >= claim.lease_until:
                log.warning("lease of claim %s ran out; leaving the rest to be reclaimed", claim.token)
                break
            try:
                data = email.data
            except ValueError as exc:  # build_mime refused it: this message can never go as it is
                error = PermanentDeliveryError(f"cannot build the email: {exc}")
                pending.append(Outcome(email.message_id, error, email.record))
                continue
            # The next envelope may go out behind this content (SMTP pipelining); it is delivered
            # only by its own send, so what a crash can leave sent but unrecorded stays one checkpoint.
            # Its bytes are built while the server works on this one: one thread, no waiting.
            following = ready[index + 1] if index + 1 < len(ready) else None
            try:
                transport.send(
                    email.envelope, data,
                    then=following.envelope if following else None,
                    meanwhile=following.build if following else None,
                )
                pending.append(Outcome(email.message_id, record=email.record))
            except DeliveryError as exc:
                pending.append(Outcome(email.message_id, exc, email.record))
            if len(pending) >= CHECKPOINT_EVERY:
                checkpoint()
    finally:
        # Also when something other than a DeliveryError is raised mid-claim (a bug, a transport
        # that breaks, an interrupt): what the server already accepted is recorded before the
        # error goes on, so it is not sent again once the lease runs out. The message whose send
        # raised stays `sending` and is reclaimed: it may go twice, as after a crash between the
        # server's 250 and the commit. A checkpoint that itself failed is tried once more here.
        checkpoint()
    return report
