"""The outbox end to end on each backend: claim, send to a real SMTP server, record, never twice."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.models import Message, Suppression
from mailer.outbox.process import process_claim
from mailer.scheduling.claim import claim_due
from mailer.tracking.suppressions import suppress
from tests.support.factories import make_contact, make_store
from tests.support.scenarios import NOW, customers, plan_winback, statuses


def test_claim_takes_due_rows_once_and_reclaims_after_the_lease(session: Session) -> None:
    store = make_store(session)
    people = customers(session, store, 4)
    plan_winback(session, store, people[:3])
    plan_winback(session, store, people[3:], due=NOW + timedelta(days=1))
    first = claim_due(session, NOW, limit=10, lease_seconds=120)
    assert len(first.message_ids) == 3
    assert claim_due(session, NOW, limit=10, lease_seconds=120).message_ids == ()
    # a dispatcher that died holding them: after the lease the rows are claimable again
    later = claim_due(session, NOW + timedelta(seconds=121), limit=10, lease_seconds=120)
    assert later.message_ids == first.message_ids and later.token != first.token


def test_tick_sends_once_and_a_second_tick_at_the_same_now_sends_nothing(database: Database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 5))
    transport = SMTPTransport(smtp_sink.url, timeout=5)
    first = tick(database, transport, settings, NOW)
    second = tick(database, transport, settings, NOW)
    transport.close()
    assert (first.sent, second.sent) == (5, 0)
    assert len(smtp_sink.messages) == 5
    assert len({m.message["Message-ID"] for m in smtp_sink.messages}) == 5
    with database.transaction() as session:
        assert statuses(session) == {"sent": 5}


def test_suppression_is_checked_at_send_time(database: Database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        people = customers(session, store, 2)
        plan_winback(session, store, people)
        suppress(session, store.id, people[0].email, "complained", NOW)
    tick(database, SMTPTransport(smtp_sink.url), settings, NOW)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [[people[1].email]]
    with database.transaction() as session:
        assert statuses(session) == {"sent": 1, "skipped": 1}


def test_hard_bounce_fails_and_suppresses_only_that_address(database: Database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        people = customers(session, store, 3)
        plan_winback(session, store, people)
    smtp_sink.fail_rcpt[people[1].email] = (550, "5.1.1 no such user")
    tick(database, SMTPTransport(smtp_sink.url), settings, NOW)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == sorted([people[0].email, people[2].email])
    with database.transaction() as session:
        assert statuses(session) == {"sent": 2, "failed": 1}
        assert session.scalar(select(func.count()).select_from(Suppression).where(Suppression.reason == "bounced")) == 1


def test_transient_failure_is_retried_with_backoff_and_delivered_once(database: Database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 2))
    smtp_sink.fail_next(2, code=451, text="4.3.0 try again later")
    transport = SMTPTransport(smtp_sink.url)
    report = tick(database, transport, settings, NOW)
    assert (report.sent, report.retry) == (0, 2)
    assert tick(database, transport, settings, NOW + timedelta(seconds=30)).sent == 0  # not yet due
    assert tick(database, transport, settings, NOW + timedelta(minutes=2)).sent == 2
    assert len(smtp_sink.messages) == 2
    with database.transaction() as session:
        assert {m.attempts for m in session.scalars(select(Message))} == {2}


def test_a_stale_claim_changes_nothing_after_another_took_over(database: Database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 2))
        stale = claim_due(session, NOW, limit=10, lease_seconds=60)
    # the first dispatcher stalls; after its lease a second one claims and sends
    transport = SMTPTransport(smtp_sink.url)
    assert tick(database, transport, settings, NOW + timedelta(seconds=61)).sent == 2
    # the first wakes up: its token no longer holds the rows, so it sends nothing
    report = process_claim(database, transport, stale, settings=settings, now=NOW + timedelta(seconds=62))
    assert report.sent == 0 and len(smtp_sink.messages) == 2


def test_a_checkpoint_records_only_the_rows_its_claim_still_holds_with_what_was_sent(session: Session) -> None:
    from mailer.outbox.finish import Outcome, record_outcomes

    store = make_store(session)
    plan_winback(session, store, customers(session, store, 3))
    claim = claim_due(session, NOW, limit=10, lease_seconds=60)
    first, taken, third = claim.message_ids
    session.execute(update(Message).where(Message.id == taken).values(claim_token="another-dispatcher"))
    record = {"subject": "We miss you", "to_email": "a@customer.example", "message_id_header": "<m.s@x>",
              "template_version": "v1"}
    outcomes = [Outcome(message_id, record={**record, "to_email": f"{message_id}@customer.example"})
                for message_id in claim.message_ids]
    assert record_outcomes(session, claim, outcomes, NOW) == {"sent": 2, "retry": 0, "failed": 0}
    rows = {m.id: m for m in session.scalars(select(Message).execution_options(populate_existing=True))}
    for message_id in (first, third):
        row = rows[message_id]
        assert (row.status, row.claim_token, row.attempts) == ("sent", None, 1)
        assert (row.subject, row.to_email, row.message_id_header) == ("We miss you", f"{message_id}@customer.example", "<m.s@x>")
    assert (rows[taken].status, rows[taken].to_email) == ("sending", None)  # the other dispatcher's now


def test_two_concurrent_claimers_deliver_each_of_1000_messages_exactly_once(committed_database: Database, settings, smtp_sink) -> None:
    with committed_database.transaction() as session:
        store = make_store(session)
        people = [make_contact(session, store, orders_count=1, last_order_at=NOW - timedelta(days=3)) for _ in range(1000)]
        plan_winback(session, store, people)
    errors: list[BaseException] = []

    def claimer() -> None:
        transport = SMTPTransport(smtp_sink.url, timeout=10)
        try:
            while True:
                with committed_database.transaction() as session:
                    claim = claim_due(session, NOW, limit=50, lease_seconds=300)
                if not claim.message_ids:
                    return
                process_claim(committed_database, transport, claim, settings=settings, now=NOW)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            transport.close()

    threads = [threading.Thread(target=claimer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    ids = [m.message["X-Mailer-Message"] for m in smtp_sink.messages]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    with committed_database.transaction() as session:
        assert statuses(session) == {"sent": 1000}


def test_a_template_saved_in_the_dashboard_is_what_the_next_batch_sends(database: Database, settings, smtp_sink) -> None:
    from mailer.rendering import TEMPLATES_DIR
    from mailer.templates_store import save_version

    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 1))
        html = (TEMPLATES_DIR / "winback" / "tier1.html").read_text().replace("It's been a little while", "Long time no see")
        text = (TEMPLATES_DIR / "winback" / "tier1.txt").read_text()
        save_version(session, store_id=store.id, name="winback/tier1", html=html, text=text, subject=None, user_id=None, now=NOW)
    tick(database, SMTPTransport(smtp_sink.url), settings, NOW)
    html_sent = smtp_sink.messages[0].message.get_body(preferencelist=("html",)).get_content()
    assert "Long time no see" in html_sent and "It's been a little while" not in html_sent


def test_each_sent_row_records_the_email_it_sent_and_its_links_by_position(database: Database, settings, smtp_sink) -> None:
    from mailer.models import Link
    from mailer.tracking.tokens import read_token

    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 3))
    tick(database, SMTPTransport(smtp_sink.url), settings, NOW)
    assert len(smtp_sink.messages) == 3
    with database.transaction() as session:
        for received in smtp_sink.messages:
            message_id = int(received.message["X-Mailer-Message"])
            row = session.get(Message, message_id)
            assert row is not None and row.status == "sent"
            assert (row.to_email, row.subject, row.message_id_header) == (
                received.rcpt_tos[0], received.message["Subject"], received.message["Message-ID"]
            )
            assert row.template_version
            links = session.execute(
                select(Link.position, Link.url, Link.kind, Link.store_id).where(Link.message_id == message_id).order_by(Link.position)
            ).all()
            html = received.message.get_body(preferencelist=("html",)).get_content()
            tracked = [read_token(settings.secret_key, "click", token) for token in re.findall(r"/t/c/([\w-]+)", html)]
            # every tracked href names this message and a stored position; the last is the honeypot
            assert tracked == [(message_id, link.position) for link in links]
            assert [link.position for link in links] == list(range(1, len(links) + 1))
            assert [link.kind for link in links] == ["content"] * (len(links) - 1) + ["honeypot"]
            assert {link.store_id for link in links} == {store.id}
            assert all(link.url.startswith("http") for link in links)


def test_cap_slots_go_to_free_contacts_and_to_the_message_that_already_holds_one(session: Session) -> None:
    from mailer.models import Contact
    from mailer.outbox.prepare import _take_cap_slots

    store = make_store(session)
    people = customers(session, store, 4)
    message_ids = plan_winback(session, store, people)
    never, taken, mine, long_ago = people
    taken.last_emailed_at, taken.last_emailed_message_id = NOW - timedelta(hours=1), 999_999  # another worker's
    mine.last_emailed_at, mine.last_emailed_message_id = NOW - timedelta(hours=1), message_ids[2]  # a crashed retry
    long_ago.last_emailed_at, long_ago.last_emailed_message_id = NOW - timedelta(hours=30), 999_998
    session.flush()

    wanted = {person.id: message_id for person, message_id in zip(people, message_ids, strict=True)}
    assert _take_cap_slots(session, wanted, NOW, 24) == {never.id, mine.id, long_ago.id}
    session.expire_all()
    rows = {c.id: (c.last_emailed_at, c.last_emailed_message_id) for c in session.scalars(select(Contact))}
    assert rows[never.id][1] == message_ids[0] and rows[long_ago.id][1] == message_ids[3]
    assert rows[mine.id][1] == message_ids[2]
    assert rows[taken.id][1] == 999_999  # the loser keeps the other worker's slot
    assert {rows[c.id][0].replace(tzinfo=None) for c in (never, mine, long_ago)} == {NOW.replace(tzinfo=None)}


def test_among_matches_a_batch_of_ids_or_codes_on_each_backend(session: Session) -> None:
    from mailer.db import among
    from mailer.models import Contact

    store = make_store(session)
    people = customers(session, store, 3)
    ids = [p.id for p in people]
    assert set(session.scalars(select(Contact.id).where(among(session, Contact.id, ids[:2])))) == set(ids[:2])
    assert list(session.scalars(select(Contact.id).where(among(session, Contact.id, [])))) == []
    emails = {people[2].email, "nobody@example.com"}
    assert list(session.scalars(select(Contact.id).where(among(session, Contact.email, emails)))) == [ids[2]]


def test_coupons_are_issued_once_per_message_and_reused_on_a_retry(session: Session) -> None:
    from mailer.models import Coupon
    from mailer.rendering.coupons import CouponRequest, issue_coupons

    store = make_store(session)
    people = customers(session, store, 3)
    messages = [session.get(Message, message_id) for message_id in plan_winback(session, store, people)]
    requests = [CouponRequest(m, 10 + 5 * n, 7, "SAVE") for n, m in enumerate(messages) if m is not None]
    first = issue_coupons(session, requests, NOW)
    session.flush()
    again = issue_coupons(session, requests, NOW + timedelta(hours=1))
    assert {k: c.code for k, c in again.items()} == {k: c.code for k, c in first.items()}
    stored = {c.message_id: c for c in session.scalars(select(Coupon))}
    assert len(stored) == 3
    for n, request in enumerate(requests):
        coupon, issued = stored[request.message.id], first[request.message.id]
        assert (issued.code, issued.percent_off, issued.expires_at) == (coupon.code, coupon.percent_off, coupon.expires_at)
        assert coupon.code.startswith("SAVE-") and coupon.percent_off == 10 + 5 * n
        assert (coupon.contact_id, coupon.store_id) == (request.message.contact_id, store.id)
        assert coupon.expires_at.replace(tzinfo=None) == (NOW + timedelta(days=7)).replace(tzinfo=None)


def test_a_batch_through_a_pipelining_server_records_each_answer(database: Database, settings) -> None:
    from tests.support.smtp_server import SMTPSink

    with database.transaction() as session:
        store = make_store(session)
        people = customers(session, store, 5)
        plan_winback(session, store, people)
    with SMTPSink(pipelining=True) as sink:
        sink.fail_rcpt[people[2].email] = (550, "5.1.1 no such user")
        sink.fail_next(1, code=451, text="4.3.0 try again later")  # the first content
        transport = SMTPTransport(sink.url, timeout=5)
        report = tick(database, transport, settings, NOW)
        transport.close()
        assert (report.sent, report.failed, report.retry) == (3, 1, 1)
        assert len(sink.messages) == 3 and sink.connection_count == 1
        assert sink.pipelined_commands > 0  # envelopes went out behind contents
    with database.transaction() as session:
        assert statuses(session) == {"sent": 3, "failed": 1, "planned": 1}


def test_a_claim_takes_the_earliest_due_of_expired_leases_and_planned_rows(session: Session) -> None:
    store = make_store(session)
    people = customers(session, store, 4)
    ids = [plan_winback(session, store, [person], due=NOW - timedelta(hours=4 - n))[-1] for n, person in enumerate(people)]
    first = claim_due(session, NOW, limit=2, lease_seconds=60)
    assert first.message_ids == tuple(ids[:2])
    # its sender died; after the lease its two rows are due first again, then the planned ones
    later = NOW + timedelta(seconds=120)
    assert claim_due(session, later, limit=3, lease_seconds=60).message_ids == tuple(ids[:3])
    assert claim_due(session, later, limit=3, lease_seconds=60).message_ids == (ids[3],)
