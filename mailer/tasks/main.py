"""The app built from MAILER_* variables, for Celery's own CLI: `celery -A mailer.tasks.main worker`."""

from __future__ import annotations

from mailer.tasks.app import celery_app

app = celery_app()
