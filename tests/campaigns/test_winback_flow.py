"""The win-back campaign over a year of ticks, on each backend, with a real SMTP server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.ingest.orders import NewOrder, record_order
from mailer.models import Coupon, Message
from tests.support.factories import make_contact, make_order, make_store

START = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _codes(smtp_sink) -> list[tuple[str, str]]:
    found = []
    for received in smtp_sink.messages:
        text = received.message.get_body(preferencelist=("plain",)).get_content()
        code = re.search(r"\b[A-Z0-9]+-[A-Z2-9]{8}\b", text)
        percent = re.search(r"(\d+)\s?%", received.message["Subject"] + text)
        found.append((code.group(0) if code else "", percent.group(1) if percent else ""))
    return found


def test_a_year_of_daily_ticks_sends_exactly_three_emails_at_90_180_360(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        person = make_contact(session, store)
        make_order(session, person, START)
    transport = SMTPTransport(smtp_sink.url)
    sent_on = {}
    for day in range(0, 400):
        now = START + timedelta(days=day, hours=1)
        before = len(smtp_sink.messages)
        tick(database, transport, settings, now)
        if len(smtp_sink.messages) > before:
            sent_on[day] = len(smtp_sink.messages) - before
    assert sent_on == {90: 1, 180: 1, 360: 1}
    codes = _codes(smtp_sink)
    assert [percent for _code, percent in codes] == ["10", "15", "20"]
    assert len({code for code, _ in codes}) == 3 and all(codes[i][0] for i in range(3))
    with database.transaction() as session:
        coupons = session.scalars(select(Coupon).order_by(Coupon.id)).all()
        assert [c.percent_off for c in coupons] == [10, 15, 20]
        assert all(c.expires_at - c.created_at == timedelta(days=14) for c in coupons)


def test_an_order_ends_the_lapse_and_restarts_the_clock(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        person = make_contact(session, store)
        make_order(session, person, START)
        person_id = person.id
    transport = SMTPTransport(smtp_sink.url)
    tick(database, transport, settings, START + timedelta(days=90, hours=1))
    assert len(smtp_sink.messages) == 1
    returned_at = START + timedelta(days=100)
    with database.transaction() as session:
        from mailer.models import Contact

        record_order(session, session.get(Contact, person_id), NewOrder("again", returned_at, __import__("decimal").Decimal("20"), "USD"), returned_at)
    for day in range(101, 185):
        tick(database, transport, settings, START + timedelta(days=day, hours=1))
    # a repeat customer now: the default audience (one-time buyers) no longer includes them
    assert len(smtp_sink.messages) == 1
    with database.transaction() as session:
        exits = session.execute(select(Message.status)).scalars().all()
        assert exits == ["sent"]
        from mailer.models import Enrollment

        assert session.scalar(select(Enrollment.exit_reason)) == "returned"


def test_a_customer_imported_at_day_200_gets_only_the_15_percent_email(database, settings, smtp_sink) -> None:
    now = START + timedelta(days=200)
    with database.transaction() as session:
        store = make_store(session)
        make_order(session, make_contact(session, store), START)
    transport = SMTPTransport(smtp_sink.url)
    assert tick(database, transport, settings, now).sent == 1
    assert tick(database, transport, settings, now).sent == 0
    assert [p for _c, p in _codes(smtp_sink)] == ["15"]
    # and the skipped tier is never sent later; the next is tier 3 at day 360
    for day in (201, 250, 359):
        assert tick(database, transport, settings, START + timedelta(days=day, hours=1)).sent == 0
    assert tick(database, transport, settings, START + timedelta(days=360, hours=1)).sent == 1


def test_a_wave_refreshes_the_planner_statistics_of_what_it_wrote(session, monkeypatch) -> None:
    # Without it, the next query over messages ran with the row counts from before the wave (a
    # nested loop: seconds for 10k enrollments, on PostgreSQL). SQLite has nothing to refresh.
    from sqlalchemy import event

    from mailer.campaigns import winback
    from mailer.models import Store

    store = make_store(session)
    for _ in range(3):
        contact = make_contact(session, store)
        make_order(session, contact, START - timedelta(days=100))
    monkeypatch.setattr(winback, "REFRESH_STATISTICS_AFTER", 6)  # 3 enrolled + 3 planned
    seen: list[str] = []
    connection = session.connection()
    event.listen(connection, "before_cursor_execute", lambda *args: seen.append(args[2]))
    result = winback.winback_stage(session, session.get_one(Store, store.id), START)
    assert (result["winback_enrolled"], result["winback_planned"]) == (3, 3)
    analyzed = [s for s in seen if s.startswith("ANALYZE")]
    expected = ['ANALYZE "enrollments"', 'ANALYZE "messages"'] if connection.dialect.name == "postgresql" else []
    assert analyzed == expected
    monkeypatch.setattr(winback, "REFRESH_STATISTICS_AFTER", 7)
    seen.clear()
    winback.winback_stage(session, session.get_one(Store, store.id), START)
    assert not [s for s in seen if s.startswith("ANALYZE")]  # nothing new: no refresh
