"""Template editing: only valid templates are saved, as versions the sender uses; preview errors name the line; test sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from mailer import create_app
from mailer.models import CapturedEmail, TemplateVersion
from mailer.stores import create_user
from mailer.templates_store import template_history, template_overrides
from tests.browser.dashboard_fixtures import PASSWORD, logged_in
from tests.support.factories import T0, make_store

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "emails"


@pytest.fixture
def board(session, database, settings) -> tuple[Flask, int]:
    """A store with a marketer's login, and the app."""
    store = make_store(session)
    create_user(session, store_id=store.id, email="marketer@shop.example", password=PASSWORD, role="marketer", now=T0)
    session.commit()
    return create_app(settings, database), store.id


def _source(name: str) -> tuple[str, str]:
    return (TEMPLATES / f"{name}.html").read_text(), (TEMPLATES / f"{name}.txt").read_text()


def _overrides(database, store_id: int) -> dict[str, tuple[str, str]]:
    with database.transaction() as session:
        return template_overrides(session, store_id)


def test_saving_keeps_versions_and_the_newest_replaces_the_file(board, database) -> None:
    app, store_id = board
    client, token = logged_in(app, "marketer@shop.example")
    html, text = _source("winback/tier2")
    first = html.replace("<h1>", "<h1>First edit: ")
    second = html.replace("<h1>", "<h1>Second edit: ")
    for edited in (first, second):
        response = client.post("/templates/winback/tier2", data={"csrf_token": token, "html": edited, "text": text, "subject": ""})
        assert response.status_code == 302
    assert _overrides(database, store_id)["winback/tier2"] == (second, text)
    with database.transaction() as session:
        history = template_history(session, store_id, "winback/tier2")
    assert [v.version for v in history] == [2, 1]
    page = client.get("/templates/winback/tier2").get_data(as_text=True)
    assert "Second edit" in page and "Save as version 3" in page

    # An earlier version opens in the editor, and restoring it makes a new version.
    assert "First edit" in client.get(f"/templates/winback/tier2/versions/{history[1].id}").get_data(as_text=True)
    assert client.post(f"/templates/winback/tier2/versions/{history[1].id}/restore", data={"csrf_token": token}).status_code == 302
    assert _overrides(database, store_id)["winback/tier2"] == (first, text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda html: html.replace("{% block content %}", "{% block content %}{% if %}"), "winback/tier1.html, line"),
        (lambda html: html.replace("{% block content %}", "{% block content %}{{ ''.__class__ }}"), "winback/tier1.html"),
    ],
)
def test_a_broken_template_is_refused_and_nothing_is_stored(board, database, change, message) -> None:
    app, store_id = board
    client, token = logged_in(app, "marketer@shop.example")
    html, text = _source("winback/tier1")
    response = client.post("/templates/winback/tier1", data={"csrf_token": token, "html": change(html), "text": text})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert "winback/tier1" not in _overrides(database, store_id)


def test_a_layout_without_the_unsubscribe_link_is_refused(board, database) -> None:
    app, store_id = board
    client, token = logged_in(app, "marketer@shop.example")
    html, text = _source("base")
    response = client.post("/templates/base", data={
        "csrf_token": token, "html": html.replace("{{ unsubscribe_url }}", "#"), "text": text,
    })
    assert response.status_code == 422
    assert "unsubscribe link" in response.get_data(as_text=True)
    assert _overrides(database, store_id) == {}


def test_the_preview_renders_sample_data_or_names_the_line_of_the_error(board) -> None:
    app, _store_id = board
    client, token = logged_in(app, "marketer@shop.example")
    html, text = _source("cart/step1")
    answer = client.post("/templates/cart/step1/preview", json={"html": html, "text": text, "subject": "Hi {{ contact.first_name }}"},
                         headers={"X-CSRF-Token": token}).get_json()
    assert answer["ok"] and answer["subject"] == "Hi Sam" and answer["problem"] is None
    assert "Linen Throw Pillow, Sage" in answer["html"] and "/static/ui/sample/item-1.svg" in answer["html"]
    assert "Linen Throw Pillow, Sage" in answer["text"]
    broken = html.replace("{{ contact.first_name or \"there\" }}", "{{ contact.first_name or \"there\" }")
    line = next(number for number, source in enumerate(broken.splitlines(), start=1) if '"there" }' in source)
    answer = client.post("/templates/cart/step1/preview", json={"html": broken, "text": text},
                         headers={"X-CSRF-Token": token}).get_json()
    assert not answer["ok"]
    assert answer["error"]["field"] == "html" and answer["error"]["line"] == line
    answer = client.post("/templates/cart/step1/preview", json={"html": html, "text": text.replace("{% endblock %}", "")},
                         headers={"X-CSRF-Token": token}).get_json()
    assert not answer["ok"] and answer["error"]["field"] == "text"
    # Rendering but not savable: said at once, before the marketer presses Save.
    # (the sample has a coupon; a contact without one would break this line)
    unguarded = html.replace("{% block content %}", "{% block content %}<p>{{ coupon.code|upper }}</p>")
    answer = client.post("/templates/cart/step1/preview", json={"html": unguarded, "text": text},
                         headers={"X-CSRF-Token": token}).get_json()
    assert answer["ok"] and "JUNI-7KQ2M9XH" in answer["html"]
    assert answer["problem"]["field"] == "html" and "percent_off" not in answer["problem"]["message"]


def test_a_test_send_goes_through_the_configured_transport(board, database) -> None:
    app, store_id = board
    client, token = logged_in(app, "marketer@shop.example")
    html, text = _source("cart/step3")
    edited = html.replace("<h1>", "<h1>Unsaved edit: ")
    response = client.post("/templates/cart/step3/test-send", json={"to": "Maya@Inbox.example", "html": edited, "text": text},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "Sent to maya@inbox.example through the outbox."
    with database.transaction() as session:
        captured = session.scalars(select(CapturedEmail).where(CapturedEmail.store_id == store_id)).one()
        assert session.scalar(select(TemplateVersion.id)) is None  # a test send saves nothing
    assert captured.recipient == "maya@inbox.example" and b"Unsaved edit" in captured.raw
    assert "maya@inbox.example" in client.get("/outbox").get_data(as_text=True)
    refused = client.post("/templates/cart/step3/test-send", json={"to": "not an address", "html": edited, "text": text},
                          headers={"X-CSRF-Token": token})
    assert refused.status_code == 400


def test_unknown_template_names_are_404(board) -> None:
    app, _store_id = board
    client, token = logged_in(app, "marketer@shop.example")
    for path in ("/templates/nope", "/templates/../config", "/templates/cart/step9"):
        assert client.get(path).status_code == 404, path
    assert client.post("/templates/nope/preview", json={}, headers={"X-CSRF-Token": token}).status_code == 404
