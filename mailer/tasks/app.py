"""The Celery app factory: Redis broker, late acks, JSON only, the `send` and `periodic` queues."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init
from kombu import Queue

from mailer.config import Settings, load_settings
from mailer.errors import ConfigError
from mailer.tasks import periodic, sending
from mailer.tasks.health import require_noeviction
from mailer.tasks.names import (
    APPLY_TRACK_QUEUE,
    HOUSEKEEPING,
    PERIODIC_QUEUE,
    SEND_CLAIM,
    SEND_QUEUE,
    TICK,
)
from mailer.tasks.resources import ProcessResources
from mailer.tasks.schedule import beat_schedule

log = logging.getLogger(__name__)

# How long Redis keeps a delivered but unacknowledged task before handing it out again. Tasks
# are acked late (after they ran), so this must outlast the longest task by far, or a slow task
# would run twice at once. Ours stop before their lease (minutes); an hour leaves a wide margin.
VISIBILITY_TIMEOUT_SECONDS = 3600


class MailerCelery(Celery):  # type: ignore[misc]
    """A Celery app that carries the settings it was built from and this process's resources."""

    mailer_settings: Settings
    resources: ProcessResources


def make_celery(settings: Settings) -> MailerCelery:
    """Build the app for `settings` (MAILER_REDIS_URL must be set); tasks and beat table included."""
    if not settings.redis_url:
        raise ConfigError("distributed mode needs MAILER_REDIS_URL (redis://host:6379/0)")
    app = MailerCelery("mailer", set_as_current=False)
    app.mailer_settings = settings
    app.resources = ProcessResources(settings)
    transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    app.conf.update(
        broker_url=settings.redis_url,
        broker_transport_options=transport_options,
        # No result backend: callers never wait for results; the database records outcomes.
        # The option is set to the same value anyway, so nobody enabling a backend gets a mismatch.
        result_backend=None,
        result_backend_transport_options=transport_options,
        task_ignore_result=True,
        # Ack after the task ran, and give the task back when its process dies, so a killed worker
        # loses nothing; the rows' claim token makes the re-run a no-op for what was recorded.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One task per process at a time: a busy process must not sit on tasks others could run.
        worker_prefetch_multiplier=1,
        # A task in flight when Redis goes away finishes and records its sends; cancelling it would
        # re-send what it delivered since its last checkpoint.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a Redis outage of any length is waited out
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        task_queues=[Queue(SEND_QUEUE), Queue(PERIODIC_QUEUE)],
        task_default_queue=SEND_QUEUE,
        task_routes={
            SEND_CLAIM: {"queue": SEND_QUEUE},
            TICK: {"queue": PERIODIC_QUEUE},
            HOUSEKEEPING: {"queue": PERIODIC_QUEUE},
            APPLY_TRACK_QUEUE: {"queue": PERIODIC_QUEUE},
        },
        beat_schedule=beat_schedule(settings),
    )
    sending.register(app)
    periodic.register(app)
    return app


@cache
def celery_app() -> MailerCelery:
    """The process's app, built on first use from MAILER_* variables (the worker CLI, `mailer tick`)."""
    return make_celery(load_settings())


def _refuse_unless_noeviction(app: Any) -> None:
    if not isinstance(app, MailerCelery):
        return
    redis_url = app.mailer_settings.redis_url
    assert redis_url is not None  # make_celery refuses settings without it
    try:
        require_noeviction(redis_url)
    except ConfigError as exc:
        log.critical("%s", exc.message)
        # Celery logs and swallows Exceptions raised by signal handlers; SystemExit stops start-up.
        raise SystemExit(f"error: {exc.message}") from exc


@worker_init.connect(weak=False)
def _check_redis_before_worker(sender: Any = None, **_kwargs: Any) -> None:
    _refuse_unless_noeviction(getattr(sender, "app", None))


@beat_init.connect(weak=False)
def _check_redis_before_beat(sender: Any = None, **_kwargs: Any) -> None:
    _refuse_unless_noeviction(getattr(sender, "app", None))
