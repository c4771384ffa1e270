"""Fixtures for the distributed tests: redis-server, a migrated PostgreSQL database, an SMTP sink, processes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.db import Database
from mailer.migrate import upgrade
from tests.distributed.cluster import ROOT, Cluster, RedisServer
from tests.support.postgres import TempPostgres
from tests.support.smtp_server import SMTPSink

if shutil.which("redis-server") is None:  # pragma: no cover - CI installs it (scripts/system-deps.sh)
    pytest.skip("redis-server is not installed", allow_module_level=True)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port (noeviction, no persistence), stopped after the test."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: TempPostgres, request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database for this test, migrated to head (workers need real commits)."""
    name = "".join(c if c.isalnum() else "_" for c in f"dist_{os.getpid()}_{request.node.name}".lower())[:60]
    url = postgres_server.create_database(name)
    upgrade(url)
    return url


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    """The test's database, as seen from the test process."""
    database = Database.from_url(pg_url)
    yield database
    database.dispose()


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    """A real SMTP server on loopback that records what it accepts."""
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def cluster_env(tmp_path: Path, pg_url: str, redis_server: RedisServer, smtp_sink: SMTPSink) -> dict[str, str]:
    """MAILER_* for the processes: this test's database, Redis and sink; short leases."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILER_")}
    env.update({
        "MAILER_ENV": "test",
        "MAILER_INSTANCE_DIR": str(tmp_path / "instance"),
        "MAILER_DATABASE_URL": pg_url,
        "MAILER_REDIS_URL": redis_server.url,
        "MAILER_SMTP_URL": smtp_sink.url,
        "MAILER_SMTP_TIMEOUT": "10",
        "MAILER_BASE_URL": "http://mailer.test",
        # A short lease, so rows a dead worker held come back within the test.
        "MAILER_CLAIM_LEASE_SECONDS": "5",
        "MAILER_SEND_BATCH_SIZE": "50",
        "MAILER_TICK_INTERVAL": "1",
        # Backpressure sized to the short lease: no more claims wait than the workers send in one.
        "MAILER_DISPATCH_MAX_BATCHES": "2",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    """Starts workers, beat and ticks with `cluster_env`; everything still running is stopped at the end."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    processes = Cluster(cluster_env, logdir)
    yield processes
    processes.close()
