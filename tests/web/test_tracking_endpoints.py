"""The public tracking endpoints against a sent message: pixel, click redirect, unsubscribe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailer import create_app
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.models import Contact, Message, Suppression, TrackingEvent
from tests.support.factories import make_store
from tests.support.scenarios import NOW, customers, plan_winback


@pytest.fixture
def sent(database, settings, smtp_sink):
    """One contact with a message sent now (to the loopback SMTP server) and another planned later."""
    with database.transaction() as session:
        store = make_store(session)
        people = customers(session, store, 1)
        plan_winback(session, store, people)
        plan_winback(session, store, people, due=NOW + timedelta(days=2), lapse="2")
    tick(database, SMTPTransport(smtp_sink.url), settings, NOW)
    assert len(smtp_sink.messages) == 1
    return smtp_sink.messages[0]


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


def _html(received) -> str:
    return received.message.get_body(preferencelist=("html",)).get_content()


def test_open_pixel_records_and_always_answers_with_the_image(client, sent, session) -> None:
    pixel = re.search(r'src="http://mailer.test(/t/o/[^"]+)"', _html(sent)).group(1)
    response = client.get(pixel)
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert session.scalar(select(TrackingEvent.kind)) == "open"
    broken = client.get("/t/o/not-a-token")
    assert broken.status_code == 200 and broken.mimetype == "image/gif"


def test_click_redirects_only_to_stored_urls(client, sent, session) -> None:
    tracked = re.findall(r'href="http://mailer.test(/t/c/[^"]+)"', _html(sent))
    assert tracked, "links were rewritten for tracking"
    response = client.get(tracked[0])
    assert response.status_code == 302
    assert not response.headers["Location"].startswith("http://mailer.test")
    token = tracked[0].rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/t/c/{altered}").status_code == 404
    assert client.get("/t/c/").status_code == 404


def test_one_click_unsubscribe_without_cookies_stops_planned_mail(client, sent, session) -> None:
    target = sent.message["List-Unsubscribe"].strip("<>")
    assert sent.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = target.removeprefix("http://mailer.test")
    page = client.get(path)
    assert page.status_code == 200 and b"Unsubscribe" in page.data
    assert session.scalar(select(Suppression.id)) is None  # a GET never unsubscribes
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    contact = session.scalar(select(Contact).where(Contact.email == sent.rcpt_tos[0]))
    assert contact.unsubscribed_at is not None
    assert session.scalar(select(Suppression.reason)) == "unsubscribed"
    later = session.scalar(select(Message).where(Message.status != "sent"))
    assert (later.status, later.skip_reason) == ("skipped", "unsubscribed")
    # a replay changes nothing
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert len(session.scalars(select(TrackingEvent).where(TrackingEvent.kind == "unsubscribe")).all()) == 1


def test_the_unsubscribe_link_of_a_test_send_changes_nothing(client, session) -> None:
    for response in (client.get("/u/test-send"), client.post("/u/test-send")):
        assert response.status_code == 200 and b"test email" in response.data
    assert session.scalar(select(Suppression.id)) is None
    assert client.get("/u/forged-token").status_code == 404
