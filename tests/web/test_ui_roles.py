"""Logins and roles: the owner manages costs and keys (a new secret key is shown once), a marketer never sees them."""

from __future__ import annotations

import pytest
from flask import Flask

from mailer import create_app
from mailer.models import Store
from mailer.stores import create_user
from tests.browser.dashboard_fixtures import PASSWORD, logged_in
from tests.support.factories import T0, make_store


@pytest.fixture
def app_and_store(session, database, settings) -> tuple[Flask, int]:
    """A store with an owner and a marketer, and the app."""
    store = make_store(session)
    create_user(session, store_id=store.id, email="owner@shop.example", password=PASSWORD, role="owner", now=T0)
    create_user(session, store_id=store.id, email="marketer@shop.example", password=PASSWORD, role="marketer", now=T0)
    session.commit()
    return create_app(settings, database), store.id


def _store(database, store_id: int) -> Store:
    with database.transaction() as session:
        store = session.get(Store, store_id)
        assert store is not None
        return store


def test_pages_need_a_login_and_forms_need_the_csrf_token(app_and_store) -> None:
    app, _store_id = app_and_store
    anonymous = app.test_client()
    for path in ("/", "/campaigns", "/templates", "/contacts", "/settings", "/outbox", "/report.csv"):
        response = anonymous.get(path)
        assert response.status_code == 302 and response.location.startswith("/login"), path
    client, _token = logged_in(app, "owner@shop.example")
    assert client.post("/settings/attribution", data={"attribution_window_days": "7"}).status_code == 400
    assert client.post("/settings/attribution", data={"attribution_window_days": "7", "csrf_token": "forged"}).status_code == 400


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app_and_store) -> None:
    app, _store_id = app_and_store
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post("/login", data={"email": "owner@shop.example", "password": "wrong password", "csrf_token": token})
    assert response.status_code == 401
    assert "That email and password do not match." in response.get_data(as_text=True)


def test_a_marketer_never_sees_keys_or_costs_and_cannot_change_them(app_and_store, database) -> None:
    app, store_id = app_and_store
    before = _store(database, store_id)
    client, token = logged_in(app, "marketer@shop.example")
    page = client.get("/settings").get_data(as_text=True)
    assert 'name="cost_per_email"' not in page
    assert "New secret key" not in page and "New public key" not in page
    assert before.public_key in page  # the snippet's key is public by design
    assert client.post("/settings/costs", data={"csrf_token": token, "cost_per_email": "0"}).status_code == 403
    assert client.post("/settings/keys", data={"csrf_token": token, "key": "secret"}).status_code == 403
    assert client.post("/settings/keys", data={"csrf_token": token, "key": "public"}).status_code == 403
    after = _store(database, store_id)
    assert (after.secret_key_hash, after.public_key, after.setting("cost_per_email")) == (
        before.secret_key_hash, before.public_key, before.setting("cost_per_email"))
    # What a marketer may change: the sender and the attribution window.
    response = client.post("/settings/sender", data={
        "csrf_token": token, "sender_name": "Maya at Shop", "sender_email": "Maya@Shop.example", "postal_address": "2 Elm St",
    })
    assert response.status_code == 302
    assert _store(database, store_id).sender_email == "maya@shop.example"


def test_the_owner_gets_a_new_secret_key_shown_once(app_and_store, database) -> None:
    app, store_id = app_and_store
    client, token = logged_in(app, "owner@shop.example")
    response = client.post("/settings/keys", data={"csrf_token": token, "key": "secret"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    start = page.index("sk_")
    secret = page[start:start + 51]
    store = _store(database, store_id)
    assert store.check_secret_key(secret)
    assert "sk_" not in client.get("/settings").get_data(as_text=True).replace("sk_…", "")


def test_the_owner_can_replace_the_public_key_and_set_the_cost(app_and_store, database) -> None:
    app, store_id = app_and_store
    old = _store(database, store_id).public_key
    client, token = logged_in(app, "owner@shop.example")
    page = client.post("/settings/keys", data={"csrf_token": token, "key": "public"}).get_data(as_text=True)
    new = _store(database, store_id).public_key
    assert new != old and new in page and "update the snippet" in page
    assert client.post("/settings/costs", data={"csrf_token": token, "cost_per_email": "0.004"}).status_code == 302
    assert _store(database, store_id).setting("cost_per_email") == 0.004
    refused = client.post("/settings/costs", data={"csrf_token": token, "cost_per_email": "-1"})
    assert refused.status_code == 422 and 'id="cost_per_email-error"' in refused.get_data(as_text=True)


def test_settings_errors_are_shown_beside_their_field(app_and_store, database) -> None:
    app, store_id = app_and_store
    client, token = logged_in(app, "owner@shop.example")
    response = client.post("/settings/profile", data={
        "csrf_token": token, "name": "", "domain": "not a domain", "timezone": "Mars/Olympus", "currency": "dollars",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("name", "domain", "timezone", "currency"):
        assert f'id="{field}-error"' in page, field
    assert _store(database, store_id).timezone == "UTC"
    assert client.post("/settings/profile", data={
        "csrf_token": token, "name": "Shop", "domain": "https://Shop.Example/", "timezone": "Europe/Berlin", "currency": "eur",
    }).status_code == 302
    store = _store(database, store_id)
    assert (store.domain, store.timezone, store.currency) == ("shop.example", "Europe/Berlin", "EUR")


def test_a_replaced_public_key_stops_working_at_once_though_keys_are_cached(app_and_store, database) -> None:
    app, store_id = app_and_store
    old = _store(database, store_id).public_key
    api = app.test_client()

    def post(key: str, event_id: str) -> int:
        body = {"key": key, "batch": [{"id": event_id, "type": "track", "event": "product_viewed", "anonymous_id": "a1",
                                       "properties": {"sku": "MUG"}}]}
        return api.post("/api/v1/track", json=body).status_code

    assert post(old, "before") == 202  # the key is now in this process's cache
    client, token = logged_in(app, "owner@shop.example")
    client.post("/settings/keys", data={"csrf_token": token, "key": "public"})
    assert post(old, "after") == 401
    assert post(_store(database, store_id).public_key, "with-the-new-key") == 202
