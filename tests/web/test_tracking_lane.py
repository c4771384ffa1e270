"""The pixel and click redirect answered in front of Flask: HEAD, odd paths, IRIs, a failing database, one_write."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mailer import create_app
from mailer.clock import utcnow
from mailer.db import Database
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.models import Link, Message, Store, TrackingEvent
from mailer.tracking.tokens import make_token
from mailer.tracking.touches import link_url, record_click, record_open
from tests.support.factories import make_store
from tests.support.scenarios import NOW, customers, plan_winback


@pytest.fixture
def sent(database, settings, smtp_sink) -> Message:
    """One message sent a minute ago (so a click is not 'too fast'), with its links stored."""
    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 1))
    tick(database, SMTPTransport(smtp_sink.url), settings, NOW)
    with database.transaction() as session:
        message = session.scalar(select(Message).where(Message.status == "sent"))
        session.execute(update(Message).where(Message.id == message.id).values(sent_at=message.sent_at - timedelta(minutes=1)))
        return message


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


def _content_link(session, message: Message) -> Link:
    return session.scalar(select(Link).where(Link.message_id == message.id, Link.kind == "content").order_by(Link.position).limit(1))


def _touches(session) -> list[tuple[str, bool, str | None]]:
    return [tuple(row) for row in session.execute(
        select(TrackingEvent.kind, TrackingEvent.machine, TrackingEvent.machine_reason).order_by(TrackingEvent.id))]


def test_pixel_answers_head_without_a_body_and_with_no_store(client, sent, session, settings) -> None:
    path = f"/t/o/{make_token(settings.secret_key, 'open', sent.id)}"
    got = client.get(path, headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0"})
    assert got.status_code == 200 and got.mimetype == "image/gif" and got.data.startswith(b"GIF89a")
    assert got.headers["Cache-Control"].startswith("no-store") and got.headers["Content-Length"] == str(len(got.data))
    head = client.head(path)
    assert head.status_code == 200 and head.data == b"" and head.mimetype == "image/gif"
    assert [kind for kind, _machine, _reason in _touches(session)] == ["open", "open"]


def test_a_head_click_redirects_and_counts_as_a_machine(client, sent, session, settings) -> None:
    link = _content_link(session, sent)
    path = f"/t/c/{make_token(settings.secret_key, 'click', sent.id, link.position)}"
    browser = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0"}
    assert client.head(path, headers=browser).status_code == 302
    got = client.get(path, headers=browser)
    assert got.status_code == 302 and got.headers["Location"] == link.url
    assert _touches(session) == [("click", True, "head_request"), ("click", False, None)]


def test_a_stored_iri_is_sent_as_a_uri(client, sent, session, settings) -> None:
    link = _content_link(session, sent)
    session.execute(update(Link).where(Link.id == link.id).values(url="https://shop.example/tasse-bleue?q=café"))
    session.commit()
    got = client.get(f"/t/c/{make_token(settings.secret_key, 'click', sent.id, link.position)}")
    assert got.status_code == 302 and got.headers["Location"] == "https://shop.example/tasse-bleue?q=caf%C3%A9"


def test_what_the_lane_does_not_answer_goes_to_flask(client, sent, session, settings) -> None:
    token = make_token(settings.secret_key, "click", sent.id, 0)
    assert client.get(f"/t/c/{token}/more").status_code == 404  # not a token path: Flask's 404
    assert client.post(f"/t/c/{token}").status_code in (404, 405)  # only GET and HEAD are tracked
    no_such_link = make_token(settings.secret_key, "click", sent.id, 999)
    assert client.get(f"/t/c/{no_such_link}").status_code == 404
    an_open_token = make_token(settings.secret_key, "open", sent.id)
    assert client.get(f"/t/c/{an_open_token}").status_code == 404  # a token for another purpose
    assert client.get("/healthz").status_code == 200  # the rest of the site is untouched
    assert _touches(session) == []


def test_a_click_on_a_message_not_sent_redirects_without_recording(client, sent, session, settings) -> None:
    link = _content_link(session, sent)
    session.execute(update(Message).where(Message.id == sent.id).values(status="failed"))
    session.commit()
    got = client.get(f"/t/c/{make_token(settings.secret_key, 'click', sent.id, link.position)}")
    assert got.status_code == 302 and got.headers["Location"] == link.url
    assert _touches(session) == []


def test_the_pixel_goes_out_when_the_database_fails(settings, tmp_path, caplog) -> None:
    unmigrated = Database.from_url(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every statement fails
    client = create_app(settings, unmigrated).test_client()
    with caplog.at_level(logging.ERROR, logger="mailer.web.tracking_lane"):
        got = client.get(f"/t/o/{make_token(settings.secret_key, 'open', 1)}")
    assert got.status_code == 200 and got.mimetype == "image/gif"
    assert "recording open failed" in caplog.text
    unmigrated.dispose()


def test_one_write_keeps_the_write_and_undoes_it_when_the_block_raises(committed_database) -> None:
    with committed_database.transaction() as session:
        store_id = make_store(session).id
    with committed_database.one_write() as connection:
        connection.execute(update(Store).where(Store.id == store_id).values(name="Kept"))
    with pytest.raises(RuntimeError), committed_database.one_write() as connection:
        connection.execute(select(Store.id)).all()
        raise RuntimeError("after the read, before any write")
    with committed_database.transaction() as session:
        assert session.get(Store, store_id).name == "Kept"
    if committed_database.dialect_name == "sqlite":  # a transaction: a write before the error is undone
        with pytest.raises(RuntimeError), committed_database.one_write() as connection:
            connection.execute(update(Store).where(Store.id == store_id).values(name="Undone"))
            raise RuntimeError("after the write")
        with committed_database.transaction() as session:
            assert session.get(Store, store_id).name == "Kept"


def test_one_write_on_the_tests_connection_stays_inside_its_transaction(database, session) -> None:
    store_id = make_store(session).id
    session.commit()
    with database.one_write() as connection:
        assert connection is database.engine  # the test's own connection, in a savepoint
        connection.execute(update(Store).where(Store.id == store_id).values(name="Inside"))
    assert session.scalar(select(func.count()).select_from(Store).where(Store.name == "Inside")) == 1


def _set_sent_at(session, message: Message, sent_at) -> None:
    session.execute(update(Message).where(Message.id == message.id).values(sent_at=sent_at))
    session.commit()


def test_each_touch_keeps_the_verdict_its_sending_time_and_link_pick(client, sent, session, settings) -> None:
    browser = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0"}
    content = _content_link(session, sent)
    honeypot = session.scalar(select(Link).where(Link.message_id == sent.id, Link.kind == "honeypot"))
    opened = f"/t/o/{make_token(settings.secret_key, 'open', sent.id)}"

    def clicked(link: Link) -> str:
        return f"/t/c/{make_token(settings.secret_key, 'click', sent.id, link.position)}"

    _set_sent_at(session, sent, utcnow())  # just delivered: what comes now is a prefetch or a scanner
    assert client.get(opened, headers=browser).status_code == 200
    assert client.get(clicked(content), headers=browser).headers["Location"] == content.url
    _set_sent_at(session, sent, utcnow() - timedelta(hours=1))
    assert client.get(opened, headers=browser).status_code == 200
    assert client.get(opened, headers=browser, environ_base={"REMOTE_ADDR": "17.58.0.10"}).status_code == 200
    assert client.get(clicked(content), headers=browser).status_code == 302
    assert client.get(clicked(honeypot), headers=browser).headers["Location"] == honeypot.url
    assert client.get(clicked(content), headers={"User-Agent": "python-requests/2.32"}).status_code == 302
    assert _touches(session) == [
        ("open", True, "prefetch"), ("click", True, "too_fast"),
        ("open", False, None), ("open", True, "privacy_proxy"), ("click", False, None), ("click", True, "honeypot"),
        ("click", True, "scanner"),
    ]
    stored = session.scalars(select(TrackingEvent).order_by(TrackingEvent.id)).all()
    assert {(t.store_id, t.message_id, t.contact_id) for t in stored} == {(sent.store_id, sent.id, sent.contact_id)}
    assert [t.link_id for t in stored if t.kind == "click"] == [content.id, content.id, honeypot.id, content.id]
    assert stored[0].user_agent == browser["User-Agent"] and stored[3].ip == "17.58.0.10"


def test_record_click_stores_nothing_and_says_so_for_a_message_not_sent(sent, session) -> None:
    link = _content_link(session, sent)
    session.execute(update(Message).where(Message.id == sent.id).values(status="failed"))
    connection = session.connection()
    assert record_click(connection, sent.id, link.position, now=utcnow(), user_agent="x", ip=None) is None
    record_open(connection, sent.id, now=utcnow(), user_agent="x", ip=None)
    assert link_url(connection, sent.id, link.position) == link.url
    assert link_url(connection, sent.id, 999) is None
    assert _touches(session) == []
