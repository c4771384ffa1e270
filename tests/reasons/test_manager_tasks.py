"""Manager tasks: one per valuable lapse, repeated on its cadence, closed by an outcome, in a digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from mailer import create_app
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.ingest.orders import NewOrder, record_order
from mailer.models import Contact, ManagerTask
from mailer.models.store import hash_secret, new_secret_key
from mailer.stores import create_store, create_user
from tests.support.factories import make_contact, make_order, make_store

T = datetime(2026, 6, 1, 9, tzinfo=UTC)


def _setup(session, settings_overrides=None):
    store = make_store(session, **(settings_overrides or {}))
    owner = create_user(session, store_id=store.id, email="owner@shop.example", password="long-enough", role="owner", now=T)
    whale = make_contact(session, store, first_name="Grace", last_name="Hopper")
    make_order(session, whale, T - timedelta(days=120), total="480.00")
    for _ in range(9):
        make_order(session, make_contact(session, store), T - timedelta(days=120), total="40.00")
    return store, owner, whale


def test_one_task_repeated_by_cadence_closed_by_an_outcome_with_a_daily_digest(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store, _owner, whale = _setup(session)
        whale_id = whale.id
        # a fresh secret key for this store's API (make_store keeps none), and another store
        secret = new_secret_key()
        store.secret_key_hash = hash_secret(secret)
        _other, other_secret = create_store(session, name="Other", domain="other.example", now=T)
    transport = SMTPTransport(smtp_sink.url)
    tick(database, transport, settings, T)
    with database.transaction() as session:
        tasks = session.scalars(select(ManagerTask)).all()
        assert [(t.contact_id, t.status, t.warmth) for t in tasks] == [(whale_id, "open", "cold")]
        assert "Grace Hopper" in tasks[0].title and "480.00" in tasks[0].title
    digests = [m for m in smtp_sink.messages if m.rcpt_tos == ["owner@shop.example"]]
    assert len(digests) == 1 and "1 customer to call today" in digests[0].message["Subject"]
    assert "Grace Hopper" in digests[0].message.get_body(preferencelist=("plain",)).get_content()

    # the same day again: no second task, no second digest
    tick(database, transport, settings, T + timedelta(hours=3))
    # cold customers come round again after 30 days
    tick(database, transport, settings, T + timedelta(days=29))
    tick(database, transport, settings, T + timedelta(days=30, hours=1))
    digests = [m for m in smtp_sink.messages if m.rcpt_tos == ["owner@shop.example"]]
    assert len(digests) == 2
    with database.transaction() as session:
        task = session.scalar(select(ManagerTask))
        assert (task.repeats, len(session.scalars(select(ManagerTask)).all())) == (2, 1)
        task_id = task.id

    # closed through the API with an outcome; nothing reopens it for this lapse
    client = create_app(settings, database).test_client()
    assert client.post(f"/api/v1/tasks/{task_id}/close", json={"outcome": "unreachable"},
                       headers={"Authorization": f"Bearer {other_secret}"}).status_code == 404  # another store's key
    bad = client.post(f"/api/v1/tasks/{task_id}/close", json={"outcome": "maybe"}, headers={"Authorization": f"Bearer {secret}"})
    assert bad.status_code == 400
    ok = client.post(f"/api/v1/tasks/{task_id}/close", json={"outcome": "unreachable"}, headers={"Authorization": f"Bearer {secret}"})
    assert ok.get_json() == {"id": task_id, "status": "closed", "outcome": "unreachable"}
    tick(database, transport, settings, T + timedelta(days=61))
    with database.transaction() as session:
        assert [(t.status, t.outcome) for t in session.scalars(select(ManagerTask))] == [("closed", "unreachable")]
        profile_tasks = client.get("/api/v1/contacts/" + session.get(Contact, whale_id).email,
                                   headers={"Authorization": f"Bearer {secret}"}).get_json()["tasks"]
        assert [t["outcome"] for t in profile_tasks] == ["unreachable"]


def test_a_returning_customer_closes_the_task_as_returned(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        _store, _owner, whale = _setup(session, {"task_top_percent": None, "task_min_spent": 100})
        whale_id = whale.id
    transport = SMTPTransport(smtp_sink.url)
    tick(database, transport, settings, T)
    with database.transaction() as session:
        whale = session.get(Contact, whale_id)
        record_order(session, whale, NewOrder("back-1", T + timedelta(days=2), Decimal("60"), "USD"), T + timedelta(days=2))
    tick(database, transport, settings, T + timedelta(days=2, hours=1))
    with database.transaction() as session:
        assert [(t.status, t.outcome) for t in session.scalars(select(ManagerTask))] == [("closed", "returned")]


def test_only_the_task_of_the_customer_who_came_back_closes(database, settings, smtp_sink) -> None:
    with database.transaction() as session:
        store, _owner, whale = _setup(session, {"task_top_percent": None, "task_min_spent": 100})
        other = make_contact(session, store, first_name="Ada")
        make_order(session, other, T - timedelta(days=120), total="300.00")
        whale_id, other_id = whale.id, other.id
    transport = SMTPTransport(smtp_sink.url)
    tick(database, transport, settings, T)
    with database.transaction() as session:
        record_order(session, session.get(Contact, whale_id), NewOrder("back-2", T + timedelta(days=2), Decimal("60"), "USD"),
                     T + timedelta(days=2))
        # an order placed before the lapse the task is about is no return
        record_order(session, session.get(Contact, other_id), NewOrder("old-1", T - timedelta(days=200), Decimal("20"), "USD"),
                     T + timedelta(days=2))
    tick(database, transport, settings, T + timedelta(days=2, hours=1))
    with database.transaction() as session:
        tasks = {t.contact_id: (t.status, t.outcome) for t in session.scalars(select(ManagerTask))}
    assert tasks == {whale_id: ("closed", "returned"), other_id: ("open", None)}


def test_warm_contacts_agrees_with_is_warm(session) -> None:
    from mailer.campaigns.tasks import is_warm, warm_contacts
    from mailer.models import ContactReason, Message, TrackingEvent
    from tests.support.scenarios import plan_winback

    store, other_store = make_store(session), make_store(session)
    people = [make_contact(session, store) for _ in range(4)]
    stranger = make_contact(session, other_store)
    plan_winback(session, store, people)
    plan_winback(session, other_store, [stranger])
    message = {m.contact_id: m for m in session.scalars(select(Message))}

    def touch(contact, kind, days_ago, machine=False):
        m = message[contact.id]
        session.add(TrackingEvent(store_id=m.store_id, message_id=m.id, contact_id=contact.id, kind=kind,
                                  machine=machine, occurred_at=T - timedelta(days=days_ago)))

    clicked, proxied, answered, long_ago = people
    touch(clicked, "click", 10)
    touch(proxied, "open", 1, machine=True)  # a privacy proxy, not a person
    touch(long_ago, "open", 40)
    touch(stranger, "click", 1)
    m = message[answered.id]
    session.add(ContactReason(store_id=store.id, contact_id=answered.id, message_id=m.id, campaign_id=m.campaign_id,
                              tier=1, reason="too_expensive", created_at=T - timedelta(days=5)))
    session.flush()
    assert warm_contacts(session, store.id, T) == {clicked.id, answered.id}
    assert [is_warm(session, p.id, T) for p in people] == [True, False, True, False]
