"""A worker SIGKILLed mid-send loses nothing: its rows come back after the lease; only in-flight ones go twice."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import timedelta

from mailer.clock import utcnow
from mailer.db import Database
from mailer.outbox.process import CHECKPOINT_EVERY
from tests.distributed.bulk import new_store, plan_many, status_counts
from tests.distributed.cluster import Cluster
from tests.support.smtp_server import SMTPSink
from tests.support.waiting import wait_until

# The suite sends 2,000 to stay quick on two cores; MAILER_TEST_KILL_N=10000 runs the full figure
# (about 2 minutes there: the 5 s lease caps the queue at 2 claims of 50, and composing an email
# costs ~8-35 ms of a worker process, far more than the loopback SMTP server's share).
N = int(os.environ.get("MAILER_TEST_KILL_N", "2000"))
KILLED_CONCURRENCY = 1


def test_sigkill_mid_send_then_every_email_goes_out(cluster: Cluster, cluster_env: dict[str, str], pg_database: Database, smtp_sink: SMTPSink) -> None:
    t = utcnow()
    store_id = new_store(pg_database, t)
    emails = plan_many(pg_database, store_id, N, t - timedelta(minutes=1), batch="kill")

    # The real thing: beat ticks every second through a `periodic` worker, which claims and
    # queues claims for the `send` workers (never more than they send within the 5 s lease).
    cluster.celery_worker("doomed", queues="send", concurrency=KILLED_CONCURRENCY)
    cluster.mailer_worker("steady", queues="send,periodic", concurrency=2)
    started = time.monotonic()
    cluster.beat()

    def delivered(count: int) -> bool:
        cluster.assert_no_task_errors()
        return len(smtp_sink.messages) >= count

    wait_until(lambda: delivered(N // 5), 120, f"{N // 5} deliveries before the kill")
    cluster.kill("doomed")
    at_kill = len(smtp_sink.messages)
    cluster.celery_worker("replacement", queues="send", concurrency=1)

    wait_until(lambda: delivered(N) and status_counts(pg_database) == {"sent": N}, 240, f"all {N} rows sent", interval=0.5)
    elapsed = time.monotonic() - started
    received = smtp_sink.messages
    by_id = Counter(str(m.message["Message-ID"]) for m in received)
    duplicates = len(received) - len(by_id)
    print(
        f"\n{N} emails, worker killed after {at_kill} deliveries: {duplicates} duplicates "
        f"(bound {CHECKPOINT_EVERY * KILLED_CONCURRENCY}); {elapsed:.1f} s from beat start "
        f"({N / elapsed:.0f} emails/s with restarts and a {cluster_env['MAILER_CLAIM_LEASE_SECONDS']} s lease)"
    )
    assert sorted({m.rcpt_tos[0] for m in received}) == sorted(emails)  # every contact × step
    assert len(by_id) == N
    assert duplicates <= CHECKPOINT_EVERY * KILLED_CONCURRENCY
