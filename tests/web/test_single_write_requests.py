"""Requests whose only write is one statement (a view, an open, a click) skip BEGIN and COMMIT on PostgreSQL."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from mailer import create_app
from mailer.db import commit_each_statement
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.models import Event, Store, TrackingEvent
from tests.support.factories import make_store
from tests.support.scenarios import NOW, customers, plan_winback


def _commits_each_statement(session) -> bool:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return bool(connection.connection.dbapi_connection.autocommit)  # the driver's own state
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def test_each_statement_commits_only_on_postgresql_and_only_for_that_session(committed_database) -> None:
    session = committed_database.session()
    commit_each_statement(session)
    postgres = committed_database.dialect_name == "postgresql"
    assert _commits_each_statement(session) is postgres
    store_id = make_store(session).id
    session.close()  # never committed: on PostgreSQL each INSERT already was
    with committed_database.transaction() as other:
        assert (other.get(Store, store_id) is not None) is postgres
        assert not _commits_each_statement(other)  # the pooled connection went back as it was
    begun = committed_database.session()
    begun.scalar(select(func.count()).select_from(Store))
    commit_each_statement(begun)  # too late: the session keeps its transaction
    assert not _commits_each_statement(begun)
    begun.close()


def test_the_database_fixture_keeps_the_tests_transaction(session) -> None:
    commit_each_statement(session)  # bound to the test's connection: nothing changes
    assert not _commits_each_statement(session)


def test_view_open_and_click_are_stored_through_the_app(committed_database, settings, smtp_sink) -> None:
    with committed_database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 1))
        key, domain, store_id = store.public_key, store.domain, store.id
    tick(committed_database, SMTPTransport(smtp_sink.url), settings, NOW)
    html = smtp_sink.messages[0].message.get_body(preferencelist=("html",)).get_content()
    client = create_app(settings, committed_database).test_client()

    view = {"id": "view-1", "type": "track", "event": "product_viewed", "anonymous_id": "browser-1",
            "properties": {"sku": "MUG-1", "url": f"https://{domain}/p/mug"}}
    for _ in range(2):  # the replay is a duplicate: the first INSERT was committed
        answer = client.post("/api/v1/track", data=json.dumps({"key": key, "batch": [view]}), content_type="text/plain")
        assert answer.status_code == 202
    assert answer.get_json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert client.get(re.search(r'src="http://mailer.test(/t/o/[^"]+)"', html).group(1)).status_code == 200
    assert client.get(re.search(r'href="http://mailer.test(/t/c/[^"]+)"', html).group(1)).status_code == 302

    with committed_database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Event).where(Event.store_id == store_id)) == 1
        kinds = sorted(session.scalars(select(TrackingEvent.kind).where(TrackingEvent.store_id == store_id)))
        assert kinds == ["click", "open"]
        assert not _commits_each_statement(session)
