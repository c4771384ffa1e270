"""Workers and beat refuse a Redis that may evict keys; a Redis that hides CONFIG only gets a warning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.errors import ConfigError
from mailer.tasks.health import require_noeviction
from tests.distributed.cluster import Cluster, RedisServer
from tests.support.waiting import wait_until


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis configured as a cache: it drops keys when memory runs short."""
    server = RedisServer(tmp_path / "evicting", policy="allkeys-lru").start()
    yield server
    server.stop()


def test_worker_and_beat_refuse_to_start_on_an_evicting_redis(cluster: Cluster, evicting_redis: RedisServer) -> None:
    with pytest.raises(ConfigError, match="allkeys-lru"):
        require_noeviction(evicting_redis.url)
    cluster.env["MAILER_REDIS_URL"] = evicting_redis.url
    worker = cluster.mailer_worker("worker", wait=False)
    beat = cluster.beat()
    for name, process in (("worker", worker), ("beat", beat)):
        wait_until(lambda process=process: process.poll() is not None, 60, f"{name} to give up")
        assert process.returncode != 0
        assert "maxmemory-policy is 'allkeys-lru'" in cluster.log(name)


def test_a_redis_without_config_gets_a_warning_not_a_refusal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path / "managed", extra_args=("--rename-command", "CONFIG", "")).start()
    try:
        with caplog.at_level(logging.WARNING, logger="mailer.tasks.health"):
            assert require_noeviction(server.url) is None
        assert "make sure it is noeviction" in caplog.text
    finally:
        server.stop()
