"""An unexpected error in the send loop: what the server accepted is recorded before it goes on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import Envelope, SMTPTransport
from mailer.engine import TickReport, send_due_inline
from mailer.models import Message
from tests.support.factories import make_store
from tests.support.scenarios import NOW, customers, plan_winback, statuses
from tests.support.smtp_server import SMTPSink


class BreaksAt:
    """SMTP, until the `at`-th send raises something that is not a DeliveryError."""

    def __init__(self, url: str, at: int) -> None:
        self.inner = SMTPTransport(url, timeout=10)
        self.at = at
        self.sends = 0

    def send(
        self, envelope: Envelope, data: bytes, *, then: Envelope | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self.sends += 1
        if self.sends == self.at:
            raise RuntimeError("the transport broke")
        self.inner.send(envelope, data, then=then, meanwhile=meanwhile)

    def close(self) -> None:
        self.inner.close()


def test_a_broken_send_records_the_accepted_ones_and_the_rest_goes_once_after_the_lease(
    database: Database, settings: Settings, smtp_sink: SMTPSink
) -> None:
    with database.transaction() as session:
        store = make_store(session)
        plan_winback(session, store, customers(session, store, 60))
    transport = BreaksAt(smtp_sink.url, at=30)
    with pytest.raises(RuntimeError, match="the transport broke"):
        send_due_inline(database, transport, settings, NOW, TickReport(now=NOW.isoformat()))
    transport.close()
    # 29 accepted: the checkpoint of 25 and the 4 after it, recorded although the loop broke
    assert len(smtp_sink.messages) == 29
    with database.transaction() as session:
        assert statuses(session) == {"sent": 29, "sending": 31}
    # the rest stays leased, then is reclaimed and sent, each email once
    later = TickReport(now=NOW.isoformat())
    healthy = SMTPTransport(smtp_sink.url, timeout=10)
    send_due_inline(database, healthy, settings, NOW + timedelta(seconds=settings.claim_lease_seconds + 1), later)
    healthy.close()
    assert later.sent == 31
    ids = [m.message["X-Mailer-Message"] for m in smtp_sink.messages]
    assert len(ids) == 60 and len(set(ids)) == 60
    with database.transaction() as session:
        assert statuses(session) == {"sent": 60}


def test_an_email_that_cannot_be_built_fails_alone_and_the_rest_go(
    database: Database, settings: Settings, smtp_sink: SMTPSink
) -> None:
    with database.transaction() as session:
        store = make_store(session)
        people = customers(session, store, 5)
        # An address no mail system takes (ingest never lets one in): build_mime refuses it.
        people[2].email = "not an@address.example"
        plan_winback(session, store, people)
    report = TickReport(now=NOW.isoformat())
    send_due_inline(database, SMTPTransport(smtp_sink.url, timeout=10), settings, NOW, report)
    assert (report.sent, report.failed) == (4, 1)
    assert len(smtp_sink.wait_for(4)) == 4
    with database.transaction() as session:
        assert statuses(session) == {"sent": 4, "failed": 1}
        error = session.scalar(select(Message.last_error).where(Message.status == "failed"))
        assert error is not None and "cannot build the email" in error and "invalid email address" in error
