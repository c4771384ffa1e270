"""The calls page and the contact page show manager tasks and reasons; closing one records its outcome."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mailer import create_app
from mailer.clock import utcnow
from mailer.models import ContactReason, ManagerTask, Message
from mailer.stores import create_user
from tests.browser.dashboard_fixtures import PASSWORD, logged_in
from tests.support.factories import T0, make_contact, make_order, make_store
from tests.support.scenarios import plan_winback


def test_calls_page_lists_open_tasks_and_closes_one_with_an_outcome(session, database, settings) -> None:
    store = make_store(session, now=utcnow() - timedelta(days=30))
    create_user(session, store_id=store.id, email="marketer@shop.example", password=PASSWORD, role="marketer", now=T0)
    person = make_contact(session, store, first_name="Grace", last_name="<b>Hopper</b>")
    make_order(session, person, T0)
    message_id = plan_winback(session, store, [person])[0]
    session.add(ContactReason(store_id=store.id, contact_id=person.id, message_id=message_id,
                              campaign_id=session.get(Message, message_id).campaign_id,
                              tier=1, reason="too_expensive", note="Cheaper <i>elsewhere</i>", created_at=T0))
    task = ManagerTask(store_id=store.id, contact_id=person.id, lapse_at=T0, title="Call Grace <b>Hopper</b>",
                       status="open", warmth="warm", due_at=T0, created_at=T0)
    session.add(task)
    session.commit()
    client, token = logged_in(create_app(settings, database), "marketer@shop.example")

    page = client.get("/tasks").get_data(as_text=True)
    assert "Call Grace &lt;b&gt;Hopper&lt;/b&gt;" in page and "<b>Hopper</b>" not in page
    profile = client.get(f"/contacts/{person.id}").get_data(as_text=True)
    assert "too expensive" in profile and "Cheaper &lt;i&gt;elsewhere&lt;/i&gt;" in profile

    assert client.post(f"/tasks/{task.id}/close", data={"outcome": "declined"}).status_code == 400  # no CSRF token
    response = client.post(f"/tasks/{task.id}/close", data={"outcome": "declined", "csrf_token": token})
    assert response.status_code == 302
    session.expire_all()
    closed = session.scalar(select(ManagerTask))
    assert (closed.status, closed.outcome) == ("closed", "declined")
    assert "declined" in client.get("/tasks").get_data(as_text=True)
