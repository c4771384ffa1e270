"""Clicking each "why did you leave?" answer in a delivered win-back email, and what follows."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from mailer import create_app
from mailer.campaigns.reasons import REASON_KEYS
from mailer.clock import utcnow
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.models import Contact, ContactReason, Enrollment, Message, Store
from mailer.reports.queries import build_report
from tests.support.factories import make_contact, make_order, make_store

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}


def _reason_links(received) -> dict[str, str]:
    html = received.message.get_body(preferencelist=("html",)).get_content()
    return dict(zip(REASON_KEYS, re.findall(r'href="http://mailer\.test(/r/[^"]+)"', html), strict=True))


def test_each_reason_is_recorded_shapes_the_next_step_and_is_reported(database, settings, smtp_sink) -> None:
    sent_at = utcnow() - timedelta(minutes=10)
    with database.transaction() as session:
        store = make_store(session)
        people = {}
        for reason in REASON_KEYS:
            person = make_contact(session, store, first_name=reason.title())
            make_order(session, person, sent_at - timedelta(days=91))
            people[reason] = person.email
        store_id = store.id
    transport = SMTPTransport(smtp_sink.url)
    assert tick(database, transport, settings, sent_at).sent == len(REASON_KEYS)
    emails = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
    client = create_app(settings, database).test_client()
    for reason, email in people.items():
        links = _reason_links(emails[email])
        page = client.get(links[reason], headers=BROWSER)
        assert page.status_code == 200 and b"Thank you for telling us" in page.data
        assert client.get(links[reason], headers=BROWSER).status_code == 200  # a replay changes nothing
    # "other" takes free text on the page it lands on
    other_link = _reason_links(emails[people["other"]])["other"]
    assert client.post(other_link, data={"note": "Moved abroad, shipping is too slow"}).status_code == 200
    # a scanner following every link records nothing
    scanner = _reason_links(emails[people["quality"]])
    for link in scanner.values():
        client.get(link, headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"})

    with database.transaction() as session:
        by_email = {c.email: c for c in session.scalars(select(Contact))}
        assert {r: by_email[e].reason for r, e in people.items()} == {r: r for r in REASON_KEYS}
        assert session.scalar(select(ContactReason.note).where(ContactReason.reason == "other")) == "Moved abroad, shipping is too slow"
        assert len(session.scalars(select(ContactReason)).all()) == len(REASON_KEYS)
        follow_ups = {
            session.get(Contact, m.contact_id).reason: m
            for m in session.scalars(select(Message).where(Message.step_index > 100))
        }
        assert set(follow_ups) == set(REASON_KEYS) - {"no_longer_need"}
        price = follow_ups["too_expensive"]
        assert (price.step_index, price.discount_override) == (102, 20)  # tier 2's email, one rung richer
        assert price.due_at - sent_at > timedelta(days=29)
        for reason in ("quality", "service", "delivery"):
            assert (follow_ups[reason].template_override, follow_ups[reason].discount_override) == ("winback/apology", 0)
        assert (follow_ups["other"].step_index, follow_ups["other"].discount_override) == (102, 15)
        ended = session.scalar(select(Enrollment).where(Enrollment.contact_id == by_email[people["no_longer_need"]].id))
        assert (ended.status, ended.exit_reason) == ("exited", "declined")
        today = utcnow().date()
        reasons = build_report(session, session.get(Store, store_id), today - timedelta(days=1), today)["reasons"]
        assert reasons["total"] == len(REASON_KEYS)
        assert reasons["by_reason"] == dict.fromkeys(REASON_KEYS, 1)
        assert reasons["by_tier"] == {"90": dict.fromkeys(REASON_KEYS, 1)}

    # the follow-ups go out when due: the apology after 14 days, the offers after 30
    before = len(smtp_sink.messages)
    tick(database, transport, settings, utcnow() + timedelta(days=15))
    apologies = smtp_sink.messages[before:]
    assert sorted(m.rcpt_tos[0] for m in apologies) == sorted(people[r] for r in ("quality", "service", "delivery"))
    assert all("sorry" in m.message["Subject"] for m in apologies)
    tick(database, transport, settings, utcnow() + timedelta(days=31))
    offers = {m.rcpt_tos[0]: m for m in smtp_sink.messages[before + 3:]}
    assert set(offers) == {people[r] for r in ("too_expensive", "found_elsewhere", "other")}
    assert "20%" in offers[people["too_expensive"]].message["Subject"]
    assert people["no_longer_need"] not in offers
