"""A user of store A gets 404 for every dashboard URL naming store B's rows: the URLs come from the route map."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from mailer import create_app
from mailer.models import Campaign, CapturedEmail, ManagerTask, Store
from mailer.stores import create_user
from mailer.templates_store import save_version
from mailer.web.ui.campaign_editing import save_campaign, snapshot, validate_definition
from tests.browser.dashboard_fixtures import PASSWORD, logged_in
from tests.support.factories import T0, make_contact, make_store

# Route parameters that name a row of one store. A new one must be added here (the test says so):
# otherwise its URLs would go unchecked.
ROW_PARAMETERS = ("campaign_id", "contact_id", "captured_id", "revision_id", "version_id", "task_id")
# Route parameters that are the same for every store: template names. Each store sees its own
# version under the same name (test_template_names_show_each_store_its_own_version).
SHARED_PARAMETERS = ("name",)


@dataclass(frozen=True)
class Rows:
    """One value per route parameter, all belonging to one store."""

    store: Store
    values: dict[str, object]


def _rows(session, store: Store, email: str, marker: str) -> Rows:
    user = create_user(session, store_id=store.id, email=email, password=PASSWORD, role="owner", now=T0)
    contact = make_contact(session, store, first_name=marker)
    campaign = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
    data = snapshot(campaign)
    data["name"] = f"Win-back of {marker}"
    definition, errors = validate_definition(campaign.key, data, snapshot(campaign))
    assert definition is not None, errors
    revision = save_campaign(session, campaign, definition, user_id=user.id, now=T0 + timedelta(hours=1))
    assert revision is not None
    html = (
        '{% extends "base.html" %}{% block content %}<h1>' + marker + "</h1>{% endblock %}"
    )
    text = '{% extends "base.txt" %}{% block content %}' + marker + "{% endblock %}"
    version = save_version(session, store_id=store.id, name="cart/step1", html=html, text=text, subject=None, user_id=user.id, now=T0)
    captured = CapturedEmail(store_id=store.id, sender="a@x.example", recipient=contact.email, subject=marker,
                             raw=b"Subject: x\r\n\r\nhello", created_at=T0)
    session.add(captured)
    task = ManagerTask(store_id=store.id, contact_id=contact.id, assignee_id=user.id, lapse_at=T0, title=f"Call {marker}",
                       status="open", warmth="cold", due_at=T0, created_at=T0)
    session.add(task)
    session.flush()
    return Rows(store, {
        "campaign_id": campaign.id, "contact_id": contact.id, "captured_id": captured.id,
        "revision_id": revision.id, "version_id": version.id, "name": "cart/step1", "task_id": task.id,
    })


@pytest.fixture
def two_stores(session, database, settings) -> tuple[Flask, Rows, Rows]:
    """Stores A and B with one row of every kind a dashboard URL names; the app; A's owner logs in."""
    a = _rows(session, make_store(session), "owner@a.example", "Store A's own")
    b = _rows(session, make_store(session), "owner@b.example", "Store B's secret")
    session.commit()
    return create_app(settings, database), a, b


def dashboard_rules(app: Flask) -> list:
    """Every rule of the dashboard blueprint."""
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("ui.")]


def test_every_url_naming_store_b_rows_is_404_for_store_a(two_stores) -> None:
    app, a, b = two_stores
    rules = dashboard_rules(app)
    unknown = {argument for rule in rules for argument in rule.arguments} - set(ROW_PARAMETERS) - set(SHARED_PARAMETERS)
    assert not unknown, f"dashboard routes take {unknown}: say whose rows they name in ROW_PARAMETERS or SHARED_PARAMETERS"
    client, token = logged_in(app, "owner@a.example")
    checked = []
    for rule in rules:
        own = [argument for argument in rule.arguments if argument in ROW_PARAMETERS]
        if not own:
            continue
        # Every mix of A's and B's values with at least one of B's: B's revision under A's campaign too.
        for owners in itertools.product("ab", repeat=len(own)):
            if "b" not in owners:
                continue
            values = {argument: a.values[argument] for argument in rule.arguments}
            values.update({argument: (b if owner == "b" else a).values[argument] for argument, owner in zip(own, owners, strict=True)})
            with app.test_request_context():
                url = app.url_for(rule.endpoint, **values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                response = client.open(url, method=method, data={"csrf_token": token, "confirm": "x", "key": "secret"},
                                       headers={"X-CSRF-Token": token})
                assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
                assert "Store B" not in response.get_data(as_text=True)
                checked.append((method, rule.rule))
    # The map really had URLs of each kind: campaigns, revisions, contacts, outbox, template versions.
    assert {rule for _method, rule in checked} >= {
        "/campaigns/<int:campaign_id>", "/campaigns/<int:campaign_id>/revisions/<int:revision_id>/restore",
        "/contacts/<int:contact_id>", "/contacts/<int:contact_id>/erase", "/outbox/<int:captured_id>",
        "/templates/<path:name>/versions/<int:version_id>",
    }


def test_the_same_urls_with_store_a_rows_answer_store_a(two_stores) -> None:
    """The other half of the proof: the URLs the test builds are right, A's own rows open."""
    app, a, _b = two_stores
    client, _token = logged_in(app, "owner@a.example")
    for rule in dashboard_rules(app):
        if "GET" not in rule.methods:
            continue
        with app.test_request_context():
            url = app.url_for(rule.endpoint, **{argument: a.values[argument] for argument in rule.arguments})
        response = client.get(url)
        assert response.status_code == 200, f"GET {url} answered {response.status_code}"
        assert "Store B" not in response.get_data(as_text=True), url


def test_template_names_show_each_store_its_own_version(two_stores) -> None:
    app, _a, _b = two_stores
    client, token = logged_in(app, "owner@a.example")
    page = client.get("/templates/cart/step1").get_data(as_text=True)
    assert "Store A&#39;s own" in page and "Store B" not in page
    preview = client.post("/templates/cart/step1/preview", json={"html": "", "text": ""}, headers={"X-CSRF-Token": token})
    assert "Store B" not in preview.get_data(as_text=True)
    listing = client.get("/templates").get_data(as_text=True)
    assert "owner@b.example" not in listing


def test_another_stores_owner_cannot_log_into_a_session_of_a(two_stores) -> None:
    """A session belongs to one user: B's owner, logged in, sees B's store on every page."""
    app, _a, _b = two_stores
    client, _token = logged_in(app, "owner@b.example")
    page = client.get("/campaigns").get_data(as_text=True)
    assert "Win-back of Store B" in page and "Store A" not in page
