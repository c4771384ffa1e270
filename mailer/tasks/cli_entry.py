"""Start a worker or the beat scheduler from code: what `mailer worker` and `mailer beat` run."""

from __future__ import annotations

import os

from mailer.config import Settings
from mailer.tasks.app import make_celery
from mailer.tasks.names import PERIODIC_QUEUE, SEND_QUEUE

DEFAULT_QUEUES = f"{SEND_QUEUE},{PERIODIC_QUEUE}"


def worker_argv(concurrency: int | None, queues: str, loglevel: str = "INFO") -> list[str]:
    """The `celery worker` arguments for our worker."""
    argv = [
        "worker",
        f"--queues={queues}",
        "--pool=prefork",
        f"--loglevel={loglevel}",
        # Unique per process, so several workers on one machine do not clash in Redis.
        f"--hostname=mailer-{os.getpid()}@%h",
        # Mingle and gossip sync worker state we do not use; they only slow start-up down.
        "--without-mingle",
        "--without-gossip",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    return argv


def run_worker(settings: Settings, concurrency: int | None = None, queues: str = DEFAULT_QUEUES, loglevel: str = "INFO") -> int:
    """Run a worker in this process until it is stopped; returns its exit status.

    `concurrency` processes (default: one per CPU) each take one task at a time from `queues`.
    """
    app = make_celery(settings)
    return int(app.start(worker_argv(concurrency, queues, loglevel)) or 0)


def run_beat(settings: Settings, loglevel: str = "INFO") -> None:
    """Run the beat scheduler in this process until it is stopped; run exactly one in a deployment."""
    app = make_celery(settings)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    # Beat remembers when each entry last ran, so a restart does not re-run the daily job.
    app.Beat(schedule=str(settings.instance_dir / "celerybeat-schedule"), loglevel=loglevel).run()
