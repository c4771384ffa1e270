"""Plan thousands of win-back emails in a few statements (INSERT … SELECT over generate_series)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text

from mailer.db import Database
from mailer.models import Message, Store
from tests.support.factories import campaign, make_store


def _naive(value: datetime) -> datetime:
    # Raw SQL binds bypass UTCDateTime: store naive UTC, as the models do.
    return value.astimezone(UTC).replace(tzinfo=None)


def new_store(database: Database, now: datetime) -> int:
    """A store with its campaigns synced; returns its id."""
    with database.transaction() as session:
        return make_store(session, now=now).id


def plan_many(database: Database, store_id: int, n: int, due: datetime, *, batch: str) -> list[str]:
    """Create `n` consenting contacts `<batch>-<i>@example.com`, each with one win-back email due at `due`.

    Returns their addresses. The contacts have no orders, so the engine's own stages plan nothing
    more for them; the enrollments are all in the treatment group (nothing held out).
    """
    created = _naive(due)
    params = {"store": store_id, "n": n, "prefix": f"{batch}-", "t": created, "due": created, "subject": f"lapse:{batch}"}
    with database.transaction() as session:
        store = session.get_one(Store, store_id)
        params["campaign"] = campaign(session, store, "winback").id
        session.execute(text(
            "INSERT INTO contacts (store_id, email, first_name, last_name, consent, orders_count, total_spent, created_at, updated_at) "
            "SELECT :store, :prefix || i || '@example.com', 'Ada', '', 'granted', 0, 0, :t, :t FROM generate_series(1, :n) AS i"
        ), params)
        session.execute(text(
            'INSERT INTO enrollments (store_id, campaign_id, contact_id, subject_key, tier, "group", status, anchor_at, entered_at) '
            "SELECT store_id, :campaign, id, :subject, 1, 'treatment', 'active', :t, :t FROM contacts "
            "WHERE store_id = :store AND email LIKE :prefix || '%'"
        ), params)
        session.execute(text(
            "INSERT INTO messages (store_id, campaign_id, enrollment_id, contact_id, step_index, is_control, status, due_at, attempts, created_at) "
            "SELECT store_id, campaign_id, id, contact_id, 1, false, 'planned', :due, 0, :t FROM enrollments "
            "WHERE campaign_id = :campaign AND subject_key = :subject"
        ), params)
    return [f"{batch}-{i}@example.com" for i in range(1, n + 1)]


def status_counts(database: Database) -> dict[str, int]:
    """How many outbox rows are in each status."""
    with database.transaction() as session:
        rows = session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
    return {status: int(count) for status, count in rows}
