"""Hand committed claims to the workers, and decide how many claims one tick may hand out."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import redis
from kombu.exceptions import OperationalError

from mailer.engine import Dispatcher
from mailer.errors import MailerError
from mailer.scheduling.claim import Claim
from mailer.tasks.names import SEND_CLAIM, SEND_QUEUE

if TYPE_CHECKING:
    from mailer.tasks.app import MailerCelery

class BrokerUnavailable(MailerError):
    """Redis cannot be reached, so nothing more is queued; claimed rows come back after their lease."""

    status = 503


def enqueue_claim(app: MailerCelery, claim: Claim, now: datetime | None = None) -> int:
    """Queue one send task for `claim` (ids only) and return how many messages it carries.

    Call it only once the claim's transaction committed (engine.send_due_distributed does):
    a worker must find the rows under the token, and a rolled-back claim must never be sent.
    """
    if not claim.message_ids:
        return 0
    try:
        app.send_task(
            SEND_CLAIM,
            args=[list(claim.message_ids), claim.token, claim.lease_until.isoformat(), now.isoformat() if now else None],
        )
    except OperationalError as exc:
        # The claim is committed but not queued: its rows are claimable again once the lease ends.
        raise BrokerUnavailable(f"cannot queue a send task on Redis (MAILER_REDIS_URL): {exc}") from exc
    return len(claim.message_ids)


def make_dispatcher(app: MailerCelery, now: datetime | None = None) -> Dispatcher:
    """A Dispatcher for engine.tick that queues on `app`; `now` is passed to the workers when given."""

    def dispatch(claim: Claim) -> int:
        return enqueue_claim(app, claim, now)

    return dispatch


def dispatch_claim(claim: Claim, now: datetime | None = None) -> int:
    """Queue `claim` on the app built from MAILER_* variables (what `mailer tick` uses)."""
    # Imported here: the app module imports the task modules, which import this one.
    from mailer.tasks.app import celery_app

    return enqueue_claim(celery_app(), claim, now)


def queued_claims(client: redis.Redis) -> int:
    """How many send tasks wait in Redis (the `send` list; kombu keeps one list per queue)."""
    return int(client.llen(SEND_QUEUE))


def dispatch_budget(client: redis.Redis, cap: int) -> int:
    """How many claims this tick may queue: the cap minus what still waits (0 when full)."""
    return max(0, cap - queued_claims(client))


def dispatch_budget_for(app: MailerCelery) -> int:
    """`dispatch_budget` on the app's Redis (for `mailer tick` and the periodic tick)."""
    try:
        return dispatch_budget(app.resources.redis, app.mailer_settings.dispatch_max_batches)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"cannot reach Redis (MAILER_REDIS_URL): {exc}") from exc
