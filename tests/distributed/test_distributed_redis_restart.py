"""Redis restarted mid-run (its queue lost): every email still goes out once, and later steps on their day."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from mailer.clock import utcnow
from mailer.db import Database
from mailer.models import Message
from tests.distributed.bulk import new_store, plan_many, status_counts
from tests.distributed.cluster import Cluster, RedisServer, TickFailed
from tests.support.smtp_server import SMTPSink
from tests.support.waiting import wait_until

NOW_DUE = 300
LATER = 20


def _tick_until_sent(cluster: Cluster, database: Database, count: int, timeout: float) -> None:
    """`mailer tick` with the real clock, again and again, until `count` rows are sent."""

    def all_sent() -> bool:
        cluster.assert_no_task_errors()
        with contextlib.suppress(TickFailed):  # Redis not back yet: the next tick tries again
            cluster.tick()
        return status_counts(database).get("sent", 0) >= count

    wait_until(all_sent, timeout, f"{count} rows sent", interval=0.5)


def test_a_redis_restart_loses_nothing_and_later_steps_go_out_on_time(
    cluster: Cluster, pg_database: Database, smtp_sink: SMTPSink, redis_server: RedisServer,
) -> None:
    t = utcnow().replace(microsecond=0)
    store_id = new_store(pg_database, t)
    now_emails = plan_many(pg_database, store_id, NOW_DUE, t - timedelta(minutes=1), batch="now")
    later_emails = plan_many(pg_database, store_id, LATER, t + timedelta(days=2), batch="later")
    smtp_sink.delay_seconds = 0.01  # ~30 emails/s: Redis goes away with tasks queued and one running
    cluster.mailer_worker("w1", queues="send", concurrency=1)

    # Backpressure: one tick queues no more than MAILER_DISPATCH_MAX_BATCHES claims.
    cap = int(cluster.env["MAILER_DISPATCH_MAX_BATCHES"]) * int(cluster.env["MAILER_SEND_BATCH_SIZE"])
    assert cluster.tick()["dispatched"] == min(cap, NOW_DUE) < NOW_DUE
    wait_until(lambda: len(smtp_sink.messages) >= 30, 60, "the first deliveries")
    redis_server.stop()  # no persistence: the queued send tasks are gone
    try:
        cluster.tick()  # dispatching with Redis down fails cleanly and claims nothing
    except TickFailed as failed:
        assert "Redis" in str(failed) or "redis" in str(failed)
    redis_server.start()

    # Claims whose tasks were lost come back after their lease (5 s) and are sent then.
    _tick_until_sent(cluster, pg_database, NOW_DUE, timeout=120)
    received = Counter(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert sorted(received) == sorted(now_emails)
    assert set(received.values()) == {1}  # each once: the task running at the restart finished and recorded
    assert status_counts(pg_database) == {"sent": NOW_DUE, "planned": LATER}  # the later step waits in the database

    # Two days later (the engine's time, given to the workers): the later step goes out, dated then.
    smtp_sink.delay_seconds = 0
    assert cluster.tick(now=t + timedelta(days=2))["dispatched"] == LATER
    wait_until(lambda: status_counts(pg_database) == {"sent": NOW_DUE + LATER}, 60, "the later step to be sent")
    received = Counter(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert sorted(received) == sorted(now_emails + later_emails)
    assert set(received.values()) == {1}
    with pg_database.transaction() as session:
        later_sent_at = set(session.scalars(select(Message.sent_at).where(Message.to_email.in_(later_emails))))
    assert later_sent_at == {t + timedelta(days=2)}
