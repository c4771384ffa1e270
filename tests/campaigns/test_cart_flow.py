"""The abandoned-cart sequence driven by `now`, on each backend, delivered to a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.ingest.orders import NewOrder, record_order
from mailer.models import Cart, Contact, Enrollment, Message
from tests.support.factories import make_cart, make_contact, make_store

LAST_ACTIVITY = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def run_ticks(database, settings, transport, until: timedelta, step: timedelta = timedelta(minutes=30)) -> dict[timedelta, int]:
    """Tick every `step` from the cart's last activity; returns {offset: emails sent at that tick}."""
    sent = {}
    offset = timedelta(0)
    while offset <= until:
        report = tick(database, transport, settings, LAST_ACTIVITY + offset)
        if report.sent:
            sent[offset] = report.sent
        offset += step
    return sent


def test_three_reminders_at_30_minutes_one_day_and_within_five_to_seven_days(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        make_cart(session, make_contact(session, store), LAST_ACTIVITY)
    sent = run_ticks(database, settings, SMTPTransport(smtp_sink.url), timedelta(days=9))
    offsets = sorted(sent)
    assert list(sent.values()) == [1, 1, 1]
    assert offsets[0] == timedelta(minutes=30)
    assert offsets[1] == timedelta(minutes=30) + timedelta(days=1)
    assert timedelta(days=5, minutes=30) <= offsets[2] <= timedelta(days=7, minutes=60)
    subjects = [m.message["Subject"] for m in smtp_sink.messages]
    assert len(set(subjects)) == 3
    texts = [m.message.get_body(preferencelist=("plain",)).get_content() for m in smtp_sink.messages]
    for text, percent in zip(texts, ("10", "15", "20"), strict=True):
        assert f"{percent}%" in text or f"{percent} %" in text
        assert "Item number 0" in text and "Item number 1" in text
    # nothing more, ever
    assert tick(database, SMTPTransport(smtp_sink.url), settings, LAST_ACTIVITY + timedelta(days=30)).sent == 0


def test_no_reminder_after_the_cart_converts_between_steps(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        person = make_contact(session, store)
        cart = make_cart(session, person, LAST_ACTIVITY)
        person_id, cart_id = person.id, cart.id
    transport = SMTPTransport(smtp_sink.url)
    run_ticks(database, settings, transport, timedelta(hours=2))
    assert len(smtp_sink.messages) == 1
    with database.transaction() as session:
        placed = LAST_ACTIVITY + timedelta(hours=5)
        from mailer.campaigns.exits import on_order

        order = record_order(session, session.get(Contact, person_id), NewOrder("o-1", placed, Decimal("21"), "USD", cart_id=cart_id), placed)
        on_order(session, order, placed)
    run_ticks(database, settings, transport, timedelta(days=9))
    assert len(smtp_sink.messages) == 1
    with database.transaction() as session:
        assert session.scalar(select(Enrollment.exit_reason)) == "converted"
        assert session.scalar(select(func.count()).select_from(Message).where(Message.skip_reason == "converted")) == 2


def test_an_order_without_cart_id_after_the_last_activity_converts_it_at_the_next_tick(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        person = make_contact(session, store)
        make_cart(session, person, LAST_ACTIVITY)
    transport = SMTPTransport(smtp_sink.url)
    run_ticks(database, settings, transport, timedelta(hours=1))
    with database.transaction() as session:
        person = session.scalar(select(Contact))
        placed = LAST_ACTIVITY + timedelta(hours=3)
        record_order(session, person, NewOrder("o-2", placed, Decimal("5"), "USD"), placed)  # no hook: the sweep finds it
    run_ticks(database, settings, transport, timedelta(days=9))
    assert len(smtp_sink.messages) == 1


def test_no_reminder_for_an_emptied_cart_and_removed_items_never_appear(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        emptied = make_cart(session, make_contact(session, store), LAST_ACTIVITY)
        edited = make_cart(session, make_contact(session, store), LAST_ACTIVITY, items=3)
        emptied_id, edited_id = emptied.id, edited.id
    transport = SMTPTransport(smtp_sink.url)
    run_ticks(database, settings, transport, timedelta(hours=1))
    assert len(smtp_sink.messages) == 2
    with database.transaction() as session:
        cart = session.get(Cart, emptied_id)
        cart.items.clear()
        cart.status = "emptied"
        other = session.get(Cart, edited_id)
        del other.items[1]  # "Item number 1" removed after step 1; the cart keeps its schedule
        other.last_activity_at = LAST_ACTIVITY + timedelta(hours=3)
    run_ticks(database, settings, transport, timedelta(days=2))
    later = smtp_sink.messages[2:]
    assert len(later) == 1  # step 2 for the edited cart only
    text = later[0].message.get_body(preferencelist=("plain",)).get_content()
    html = later[0].message.get_body(preferencelist=("html",)).get_content()
    assert "Item number 0" in text and "Item number 2" in text
    assert "Item number 1" not in text and "Item number 1" not in html


def test_guest_carts_wait_for_an_email_and_consent_rules_apply(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session, cart_first_reminder_without_consent=True)
        guest = make_cart(session, None, LAST_ACTIVITY, store_id=store.id)
        prospect = make_contact(session, store, consent="unknown")  # never ordered, no consent
        make_cart(session, prospect, LAST_ACTIVITY)
        guest_id, store_id = guest.id, store.id
    transport = SMTPTransport(smtp_sink.url)
    run_ticks(database, settings, transport, timedelta(hours=2))
    assert [m.rcpt_tos for m in smtp_sink.messages] == [[prospect.email]]  # the first reminder only
    with database.transaction() as session:
        known = make_contact(session, session.get(__import__("mailer.models", fromlist=["Store"]).Store, store_id))
        session.get(Cart, guest_id).contact_id = known.id
    run_ticks(database, settings, transport, timedelta(days=9))
    recipients = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert recipients.count(prospect.email) == 1  # later steps need consent
    assert recipients.count(known.email) >= 1


def test_cart_reminders_take_precedence_over_win_back_which_waits_not_drops(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        person = make_contact(session, store)
        from tests.support.factories import make_order

        make_order(session, person, LAST_ACTIVITY - timedelta(days=89))  # tier 1 from tomorrow ...
        make_cart(session, person, LAST_ACTIVITY)  # ... but a cart sequence starts today
    transport = SMTPTransport(smtp_sink.url)
    run_ticks(database, settings, transport, timedelta(days=12), step=timedelta(hours=1))
    subjects = [m.message["Subject"] for m in smtp_sink.messages]
    assert len(subjects) == 4
    winback_subject = "it's been a while"
    assert not any(winback_subject in s for s in subjects[:3]), subjects  # the whole cart sequence first
    assert winback_subject in subjects[3]  # then the win-back email: waited, not dropped
    with database.transaction() as session:
        sent_times = sorted(session.scalars(select(Message.sent_at).where(Message.status == "sent")))
        gaps = [b - a for a, b in zip(sent_times, sent_times[1:], strict=False)]
        assert min(gaps) >= timedelta(hours=16)  # the frequency cap held throughout
