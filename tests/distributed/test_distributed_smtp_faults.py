"""SMTP refusals in distributed mode: 421/451 are retried with backoff, a 550 suppresses only that contact."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mailer.clock import utcnow
from mailer.db import Database
from mailer.models import Message, Suppression
from tests.distributed.bulk import new_store, plan_many, status_counts
from tests.distributed.cluster import Cluster
from tests.support.smtp_server import SMTPSink
from tests.support.waiting import wait_until


def _settled(database: Database) -> bool:
    return "sending" not in status_counts(database)


def test_refusals_are_retried_or_suppressed_through_the_workers(cluster: Cluster, pg_database: Database, smtp_sink: SMTPSink) -> None:
    t = utcnow().replace(microsecond=0)
    store_id = new_store(pg_database, t)
    emails = plan_many(pg_database, store_id, 12, t, batch="faults")
    bounced = emails[3]
    smtp_sink.fail_rcpt[bounced] = (550, "5.1.1 no such user")
    smtp_sink.fail_next(3, code=421, text="4.3.2 service shutting down", command="MAIL")
    smtp_sink.fail_next(4, code=451, text="4.3.0 try again later", command="DATA")
    cluster.mailer_worker("w1")
    cluster.celery_worker("w2")

    # The engine's time is given (`--now`), so the retry schedule (1 min, then 5 min) is walked
    # through without waiting; the workers record each attempt at that time.
    first = cluster.tick(now=t)
    assert first["dispatched"] == 12
    wait_until(lambda: _settled(pg_database), 60, "the first attempts to be recorded")
    retried = status_counts(pg_database).get("planned", 0)
    assert retried == 7  # 3 refused at MAIL, 4 at DATA
    for minutes in (1, 7, 30):
        cluster.tick(now=t + timedelta(minutes=minutes))
        wait_until(lambda: _settled(pg_database), 60, "a retry round to be recorded")

    assert status_counts(pg_database) == {"sent": 11, "failed": 1}
    delivered = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert sorted(delivered) == sorted(e for e in emails if e != bounced)  # each exactly once
    with pg_database.transaction() as session:
        assert {s.reason for s in session.scalars(select(Suppression))} == {"bounced"}
        attempts = {m.to_email: m.attempts for m in session.scalars(select(Message))}
        sent_at = {m.sent_at for m in session.scalars(select(Message).where(Message.status == "sent"))}
    assert sum(1 for n in attempts.values() if n >= 2) == 7
    assert attempts[bounced] == 1
    assert min(sent_at) == t  # the workers used the tick's --now, not their clock
