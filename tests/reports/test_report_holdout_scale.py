"""The report at a wave's scale: a fixed number of queries, however many enrollments and emails there are."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from sqlalchemy import event, func, insert, select

from mailer.campaigns.sync import sync_campaigns
from mailer.models import Campaign, Enrollment, Message
from mailer.reports.queries import build_report
from tests.support.factories import T0, make_contact, make_order, make_store


def _enroll(session, store, campaign, people: int, start: int) -> None:
    for n in range(start, start + people):
        contact = make_contact(session, store)
        group = "control" if n % 2 else "treatment"
        session.add(Enrollment(store_id=store.id, campaign_id=campaign.id, contact_id=contact.id, subject_key=f"lapse:{n}",
                               tier=1, group=group, anchor_at=T0, entered_at=T0))
        if n % 3 == 0:
            make_order(session, contact, T0 + timedelta(days=2), total="30.00")
    session.flush()


def _statements(session, store) -> tuple[int, dict]:
    seen: list[str] = []
    connection = session.connection()
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(connection, "before_cursor_execute", listener)
    try:
        report = build_report(session, store, date(2026, 1, 1), date(2026, 12, 31))
    finally:
        event.remove(connection, "before_cursor_execute", listener)
    return len(seen), report


def test_holdout_queries_do_not_grow_with_enrollments(session) -> None:
    store = make_store(session)
    sync_campaigns(session, store, T0)
    winback = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
    _enroll(session, store, winback, 6, 0)
    few, report = _statements(session, store)
    assert report["holdout"]["treated"]["enrolled"] == 3 and report["holdout"]["control"]["enrolled"] == 3
    _enroll(session, store, winback, 60, 6)
    many, report = _statements(session, store)
    assert many == few
    holdout = report["holdout"]
    assert holdout["treated"]["enrolled"] == 33 and holdout["control"]["enrolled"] == 33
    # n % 3 == 0 ordered two days in: of 0..65, the even ones are treated (0, 6, 12, … 60: 11) and the odd control (3, 9, … 63: 11)
    assert holdout["treated"]["converted"] == 11 and holdout["control"]["converted"] == 11
    assert holdout["treated"]["revenue"] == 330.0


def test_a_report_over_more_emails_than_a_statement_can_bind(session) -> None:
    # A statement binds at most 65,535 parameters on PostgreSQL, and 32,766 on SQLite as usually
    # built (this one allows more, so the test sets the usual limit): a list of a wave's message
    # ids would fail the report; subqueries do not.
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.connection.dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
        emails = 33_000
    else:
        emails = 66_000
    store = make_store(session)
    sync_campaigns(session, store, T0)
    winback = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
    contact = make_contact(session, store)
    enrollment = Enrollment(store_id=store.id, campaign_id=winback.id, contact_id=contact.id, subject_key="lapse:big",
                            tier=1, group="treatment", anchor_at=T0, entered_at=T0)
    session.add(enrollment)
    session.flush()
    sent_at = T0 + timedelta(hours=1)
    session.execute(insert(Message), [
        {"store_id": store.id, "campaign_id": winback.id, "enrollment_id": enrollment.id, "contact_id": contact.id,
         "step_index": n, "status": "sent", "due_at": T0, "sent_at": sent_at, "created_at": T0}
        for n in range(emails)
    ])
    make_order(session, contact, sent_at + timedelta(hours=1), total="42.00",
               attributed_message_id=session.scalar(select(func.min(Message.id)).where(Message.store_id == store.id)))
    report = build_report(session, store, date(2026, 1, 1), date(2026, 12, 31))
    assert report["totals"]["sent"] == emails and report["totals"]["revenue"] == 42.0
