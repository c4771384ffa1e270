"""The queued ingest mode distributed: beat's task applies the queue in a real worker; drainers never share a store."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer import create_app
from mailer.config import load_settings
from mailer.db import Database
from mailer.ingest.track_queue import DrainReport, drain
from mailer.models import Event, QueuedTrack
from mailer.tasks.app import make_celery
from mailer.tasks.names import APPLY_TRACK_QUEUE, PERIODIC_QUEUE
from mailer.web.api.ratelimit import Limit, TokenBucketLimiter, use_limiter
from tests.distributed.cluster import Cluster, RedisServer
from tests.ingest.helpers import Shop, cart, identify, make_shop, track
from tests.ingest.test_batch_identity import end_state
from tests.support.factories import T0
from tests.support.waiting import wait_until

NOW = T0 + timedelta(days=3)


def queued_client(tmp_path: Path, database: Database) -> object:
    settings = load_settings({"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path / "instance"), "MAILER_INGEST_MODE": "queued"})
    app = create_app(dataclasses.replace(settings, database_url="unused"), database)
    use_limiter(app, "public", TokenBucketLimiter(Limit(rate=1e6, burst=10**6)))
    return app.test_client()


def count(database: Database, model: type) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_beat_schedules_the_drain_only_in_the_queued_mode(tmp_path: Path, redis_server: RedisServer) -> None:
    base = {"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path), "MAILER_REDIS_URL": redis_server.url}
    inline = make_celery(load_settings(base))
    queued = make_celery(load_settings({**base, "MAILER_INGEST_MODE": "queued"}))
    try:
        assert "apply-track-queue" not in inline.conf.beat_schedule
        entry = queued.conf.beat_schedule["apply-track-queue"]
        assert (entry["task"], entry["schedule"]) == (APPLY_TRACK_QUEUE, timedelta(seconds=1))
        assert queued.amqp.router.route({}, APPLY_TRACK_QUEUE)["queue"].name == PERIODIC_QUEUE
    finally:
        for app in (inline, queued):
            app.resources.close()
            app.close()


def test_a_worker_applies_what_the_snippet_queued_within_seconds(
    cluster: Cluster, cluster_env: dict[str, str], pg_database: Database, tmp_path: Path,
) -> None:
    cluster_env["MAILER_INGEST_MODE"] = "queued"
    cluster_env["MAILER_TICK_INTERVAL"] = "3600"  # only the queue's own task applies it here
    shop = make_shop(pg_database)
    client = queued_client(tmp_path, pg_database)
    for n in range(20):
        batch = [identify(f"i{n}", f"p{n}@example.com", anonymous_id=f"b{n}"),
                 track(f"c{n}", "cart_updated", cart(f"cart{n}", ("MUG", "9.00", 1)), anonymous_id=f"b{n}")]
        answer = client.post("/api/v1/track", data=json.dumps({"key": shop.public_key, "batch": batch}), content_type="text/plain")
        assert answer.get_json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert (count(pg_database, QueuedTrack), count(pg_database, Event)) == (20, 0)
    cluster.mailer_worker("periodic-worker", queues="periodic")
    cluster.beat()

    def applied() -> bool:
        cluster.assert_no_task_errors()
        return count(pg_database, Event) == 40

    wait_until(applied, 60, "the worker to apply the queue")
    assert count(pg_database, QueuedTrack) == 0
    health = client.get("/healthz").get_json()
    assert health["track_queue"] == {"waiting": 0, "oldest_seconds": 0.0, "given_up": 0}


def test_two_drainers_at_once_apply_each_body_once_and_in_order(
    committed_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One drainer per store at a time (its lease), on both backends.
    database = committed_database
    monkeypatch.setattr("mailer.web.api.track_lane.utcnow", lambda: NOW)  # same received_at for both copies
    client = queued_client(tmp_path, database)

    def queue_traffic(shops: list[Shop]) -> None:
        for n in range(60):
            # A shared browser identifies as someone new in every request: whose events are whose
            # depends on the order the requests are applied in.
            batch = [track(f"v{n}", "product_viewed", {"sku": "MUG"}, anonymous_id="shared"),
                     identify(f"i{n}", f"p{n}@example.com", anonymous_id="shared"),
                     track(f"c{n}", "cart_updated", cart("c", ("MUG", "9.00", 1 + n % 3)), anonymous_id="shared")]
            answer = client.post("/api/v1/track", data=json.dumps({"key": shops[n % 3].public_key, "batch": batch}),
                                 content_type="text/plain")
            assert answer.status_code == 202

    raced = [make_shop(database, name=f"Raced {n}") for n in range(3)]
    queue_traffic(raced)
    reports: list[DrainReport] = []
    start = threading.Barrier(2)

    def drainer() -> None:
        start.wait()
        reports.append(drain(database))

    threads = [threading.Thread(target=drainer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    reports.append(drain(database))  # a store each drainer left to the other is done by then: nothing left
    assert sum(report.bodies for report in reports) == 60 and reports[-1].bodies == 0
    assert sum(report.accepted for report in reports) == 180
    assert sum(report.duplicates + report.failed for report in reports) == 0

    alone = [make_shop(database, name=f"Alone {n}") for n in range(3)]
    queue_traffic(alone)
    assert drain(database).bodies == 60
    with database.transaction() as session:
        for one, other in zip(raced, alone, strict=True):
            assert end_state(session, one.id) == end_state(session, other.id)
