"""The daily digest: each responsible user gets one email listing the calls due today."""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from mailer.campaigns.tasks import take_due_tasks
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Envelope, OutgoingEmail, Transport, build_mime
from mailer.errors import DeliveryError
from mailer.models import ManagerTask, Store, User

log = logging.getLogger(__name__)
DIGEST_EVERY = timedelta(hours=20)  # once a day, a little slack for when the tick runs


def digest_email(store: Store, user: User, tasks: list[ManagerTask], settings: Settings, now: datetime) -> tuple[Envelope, bytes]:
    """The digest as text and a plain HTML list; it is a work email, not marketing."""
    lines = [f"- {task.title} [{task.warmth}, turn {task.repeats}]" for task in tasks]
    text = (
        f"Good morning,\n\n{len(tasks)} customer{'s' if len(tasks) != 1 else ''} of {store.name} to call today:\n\n"
        + "\n".join(lines)
        + f"\n\nClose a task with its outcome on the contact's page: {settings.base_url}/\n"
    )
    items = "".join(f"<li>{html.escape(task.title)} <small>({task.warmth}, turn {task.repeats})</small></li>" for task in tasks)
    body = f"<p>Good morning,</p><p>{len(tasks)} customers of {html.escape(store.name)} to call today:</p><ul>{items}</ul>"
    subject = f"{store.name}: {len(tasks)} customer{'s' if len(tasks) != 1 else ''} to call today"
    email = OutgoingEmail(
        sender=store.from_address, sender_name=f"{store.name} via mailer", recipient=user.email, recipient_name="",
        subject=subject, html=f"<html><body>{body}</body></html>", text=text,
        message_id=f"<digest.{user.id}.{now:%Y%m%d}@{store.domain}>",
    )
    return Envelope(sender=store.from_address, recipient=user.email, store_id=store.id, subject=subject), build_mime(email, now)


def send_digests(database: Database, transport: Transport, settings: Settings, now: datetime) -> int:
    """Send each user with due tasks their digest, at most once a day; returns how many went."""
    with database.transaction() as session:
        user_ids = list(session.scalars(
            select(User.id).where(
                or_(User.last_digest_at.is_(None), User.last_digest_at <= now - DIGEST_EVERY),
                User.id.in_(select(ManagerTask.assignee_id).where(ManagerTask.status == "open", ManagerTask.due_at <= now)),
            )
        ))
    sent = 0
    for user_id in user_ids:
        with database.transaction() as session:
            user = session.get(User, user_id)
            store = session.get(Store, user.store_id) if user else None
            if user is None or store is None:
                continue
            tasks = take_due_tasks(session, user, now)
            user.last_digest_at = now
            envelope, data = digest_email(store, user, tasks, settings, now)
        try:
            transport.send(envelope, data)
            sent += 1
        except DeliveryError:
            log.exception("digest for user %s failed; the tasks come round again on their cadence", user_id)
    return sent
