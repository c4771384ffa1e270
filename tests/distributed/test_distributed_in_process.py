"""The distributed pieces in this process, on real Redis and PostgreSQL: tick lock, backpressure, idempotent sends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from redis.lock import Lock
from sqlalchemy import select

from mailer.clock import utcnow
from mailer.config import Settings, load_settings
from mailer.db import Database
from mailer.ingest.track_queue import MAX_ATTEMPTS
from mailer.models import CapturedEmail, QueuedTrack
from mailer.scheduling.claim import claim_due
from mailer.tasks.app import MailerCelery, make_celery
from mailer.tasks.dispatch import enqueue_claim, queued_claims
from mailer.tasks.names import HOUSEKEEPING, PERIODIC_QUEUE, SEND_CLAIM, SEND_QUEUE, TICK
from mailer.tasks.periodic import TICK_LOCK_NAME, housekeeping, run_tick
from tests.distributed.bulk import new_store, plan_many, status_counts
from tests.distributed.cluster import RedisServer
from tests.support.factories import make_store
from tests.support.smtp_server import SMTPSink


@pytest.fixture
def app_settings(tmp_path: Path, pg_url: str, redis_server: RedisServer, smtp_sink: SMTPSink) -> Settings:
    """Settings for an app in this process: the test's database, Redis and sink; batches of 10."""
    return load_settings(
        {"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path / "instance")},
        database_url=pg_url, redis_url=redis_server.url, smtp_url=smtp_sink.url, base_url="http://mailer.test",
        send_batch_size=10, claim_lease_seconds=60,
    )


@pytest.fixture
def app(app_settings: Settings) -> Iterator[MailerCelery]:
    """The Celery app, its connections closed afterwards."""
    celery = make_celery(app_settings)
    yield celery
    celery.resources.close()
    celery.close()


def test_the_app_routes_tasks_to_their_queues_and_ticks_on_the_interval(app: MailerCelery) -> None:
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.broker_transport_options["visibility_timeout"] >= 3600
    assert conf.result_backend_transport_options == conf.broker_transport_options
    routes = {name: app.amqp.router.route({}, name)["queue"].name for name in (SEND_CLAIM, TICK, HOUSEKEEPING)}
    assert routes == {SEND_CLAIM: SEND_QUEUE, TICK: PERIODIC_QUEUE, HOUSEKEEPING: PERIODIC_QUEUE}
    schedule = conf.beat_schedule
    assert schedule["engine-tick"]["schedule"] == timedelta(seconds=app.mailer_settings.tick_interval_seconds)
    assert schedule["housekeeping"]["task"] == HOUSEKEEPING


def test_a_tick_that_finds_the_lock_held_returns_at_once(app: MailerCelery, pg_database: Database) -> None:
    t = utcnow()
    plan_many(pg_database, new_store(pg_database, t), 5, t - timedelta(minutes=1), batch="lock")
    held = Lock(app.resources.redis, TICK_LOCK_NAME, timeout=60, blocking=False)
    assert held.acquire()
    assert run_tick(app) is None
    assert status_counts(pg_database) == {"planned": 5}  # it did not even plan
    held.release()
    report = run_tick(app)
    assert report is not None and report["dispatched"] == 5
    assert queued_claims(app.resources.redis) == 1


def test_a_tick_queues_no_more_claims_than_the_cap(app: MailerCelery, pg_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "mailer_settings", replace(app.mailer_settings, dispatch_max_batches=3))
    t = utcnow()
    plan_many(pg_database, new_store(pg_database, t), 100, t - timedelta(minutes=1), batch="cap")
    client: redis.Redis = app.resources.redis

    first = run_tick(app)
    assert first is not None and (first["claims"], first["dispatched"]) == (3, 30)
    assert status_counts(pg_database) == {"sending": 30, "planned": 70}
    assert queued_claims(client) == 3
    second = run_tick(app)  # the queue is full: nothing more is claimed, no lease is wasted
    assert second is not None and second["claims"] == 0
    client.rpop(SEND_QUEUE)  # a worker took one
    third = run_tick(app)
    assert third is not None and third["claims"] == 1
    assert status_counts(pg_database) == {"sending": 40, "planned": 60}


def test_a_redelivered_send_task_sends_nothing_again(app: MailerCelery, pg_database: Database, smtp_sink: SMTPSink) -> None:
    t = utcnow()
    plan_many(pg_database, new_store(pg_database, t), 4, t - timedelta(minutes=1), batch="again")
    with pg_database.transaction() as session:
        claim = claim_due(session, t, limit=10, lease_seconds=60)
    send = app.tasks[SEND_CLAIM]
    args = (list(claim.message_ids), claim.token, claim.lease_until.isoformat(), t.isoformat())
    assert send(*args)["sent"] == 4
    assert send(*args)["sent"] == 0  # Redis handed it out twice (late ack): the token holds nothing now
    assert len(smtp_sink.messages) == 4
    assert enqueue_claim(app, claim, t) == 4  # queuing is ids only
    assert queued_claims(app.resources.redis) == 1


def test_a_claim_that_reaches_a_worker_after_its_lease_is_left_alone(app: MailerCelery, pg_database: Database, smtp_sink: SMTPSink) -> None:
    t = utcnow() - timedelta(minutes=5)
    plan_many(pg_database, new_store(pg_database, t), 3, t, batch="late")
    with pg_database.transaction() as session:
        claim = claim_due(session, t, limit=10, lease_seconds=60)  # its lease ended four minutes ago
    report = app.tasks[SEND_CLAIM](list(claim.message_ids), claim.token, claim.lease_until.isoformat(), None)
    assert report == {} and smtp_sink.messages == []
    assert status_counts(pg_database) == {"sending": 3}  # reclaimed by the next tick


def test_housekeeping_deletes_captured_emails_older_than_30_days(app: MailerCelery, pg_database: Database) -> None:
    now = utcnow()
    with pg_database.transaction() as session:
        for age in (31, 29, 1):
            session.add(CapturedEmail(sender="s@shop.example", recipient=f"r{age}@example.com", subject="hi",
                                      raw=b"x", created_at=now - timedelta(days=age)))
    assert housekeeping(app.resources) == {"captured_deleted": 1, "track_bodies_deleted": 0}
    with pg_database.transaction() as session:
        assert sorted(c.recipient for c in session.query(CapturedEmail)) == ["r1@example.com", "r29@example.com"]


def test_housekeeping_deletes_track_bodies_given_up_on_30_days_ago(app: MailerCelery, pg_database: Database) -> None:
    now = utcnow()
    with pg_database.transaction() as session:
        store = make_store(session)
        for age, attempts in ((31, MAX_ATTEMPTS), (29, MAX_ATTEMPTS), (31, 2)):
            session.add(QueuedTrack(store_id=store.id, received_at=now - timedelta(days=age), body=f"{age}/{attempts}",
                                    attempts=attempts))
    assert housekeeping(app.resources) == {"captured_deleted": 0, "track_bodies_deleted": 1}
    with pg_database.transaction() as session:  # one given up on recently, one still being tried
        assert sorted(session.scalars(select(QueuedTrack.body))) == ["29/5", "31/2"]
