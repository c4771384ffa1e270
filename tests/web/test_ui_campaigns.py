"""Campaign editing: errors beside their field with the campaign files' rules, versions, history and restore."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from mailer import create_app
from mailer.models import Campaign, CampaignRevision, Store
from mailer.stores import create_user
from mailer.web.ui.campaign_editing import changes, field_name, snapshot
from tests.browser.dashboard_fixtures import PASSWORD, logged_in
from tests.support.factories import T0, make_store


@pytest.fixture
def board(session, database, settings) -> tuple[Flask, int]:
    """A store with a marketer's login, and the app."""
    store = make_store(session)
    create_user(session, store_id=store.id, email="marketer@shop.example", password=PASSWORD, role="marketer", now=T0)
    session.commit()
    return create_app(settings, database), store.id


def _campaign(database, store_id: int, key: str) -> tuple[Campaign, dict, list[CampaignRevision]]:
    with database.transaction() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.store_id == store_id, Campaign.key == key))
        assert campaign is not None
        revisions = list(session.scalars(select(CampaignRevision).where(CampaignRevision.campaign_id == campaign.id).order_by(CampaignRevision.version)))
        return campaign, snapshot(campaign), revisions


def _form(data: dict, token: str, **changes: str) -> dict[str, str]:
    """The edit form as the page submits it, filled from a snapshot, with `changes` on top."""
    form = {"csrf_token": token, "name": data["name"], "audience": data["audience"], "holdout_percent": str(data["holdout_percent"])}
    if data["enabled"]:
        form["enabled"] = "on"
    for position, step in enumerate(data["steps"], start=1):
        for key in ("name", "delay", "window", "discount_percent", "subject", "template"):
            form[f"step-{position}-{key}"] = str(step[key])
    form.update(changes)
    return form


def _errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="field-error" id="([a-z0-9_-]+)-error" role="alert">([^<]*)</span>', page))


def test_mistakes_are_shown_beside_each_field_and_nothing_is_saved(board, database) -> None:
    app, store_id = board
    campaign, data, _ = _campaign(database, store_id, "abandoned_cart")
    client, token = logged_in(app, "marketer@shop.example")
    response = client.post(f"/campaigns/{campaign.id}", data=_form(
        data, token, **{
            "holdout_percent": "80", "step-2-delay": "soon", "step-2-discount_percent": "95", "step-1-subject": "{{ contact.first_name",
            "step-3-template": "cart/missing", "step-1-discount_percent": "ten",
        },
    ))
    assert response.status_code == 422
    errors = _errors(response.get_data(as_text=True))
    assert set(errors) == {"holdout_percent", "step-2-delay", "step-2-discount_percent", "step-1-subject", "step-3-template", "step-1-discount_percent"}
    assert "from 0 to 50" in errors["holdout_percent"]
    assert "duration" in errors["step-2-delay"]
    assert "from 0 to 90" in errors["step-2-discount_percent"]
    assert "line 1" in errors["step-1-subject"]
    assert "cart/missing" in errors["step-3-template"]
    assert errors["step-1-discount_percent"] == "must be a whole number"
    after, after_data, revisions = _campaign(database, store_id, "abandoned_cart")
    assert (after.version, after.edited, after_data, revisions) == (campaign.version, False, data, [])


def test_a_rule_across_steps_is_reported_on_the_step_that_breaks_it(board, database) -> None:
    app, store_id = board
    campaign, data, _ = _campaign(database, store_id, "abandoned_cart")
    client, token = logged_in(app, "marketer@shop.example")
    response = client.post(f"/campaigns/{campaign.id}", data=_form(data, token, **{"step-3-delay": "1h"}))
    assert response.status_code == 422
    assert "must not be earlier than steps[2].delay" in _errors(response.get_data(as_text=True))["step-3-delay"]


def test_saving_bumps_the_version_marks_it_edited_and_keeps_history(board, database) -> None:
    app, store_id = board
    campaign, data, _ = _campaign(database, store_id, "abandoned_cart")
    client, token = logged_in(app, "marketer@shop.example")
    response = client.post(f"/campaigns/{campaign.id}", data=_form(data, token, **{"step-2-discount_percent": "25", "step-2-delay": "1d12h"}))
    assert response.status_code == 302
    after, after_data, revisions = _campaign(database, store_id, "abandoned_cart")
    assert after.version == campaign.version + 1 and after.edited
    assert after.step(2).discount_percent == 25 and after.step(2).delay_minutes == 36 * 60
    assert [r.version for r in revisions] == [campaign.version, campaign.version + 1]
    assert revisions[0].snapshot == data and revisions[0].user_id is None  # as the campaign file had it
    assert revisions[1].snapshot == after_data and revisions[1].user_id is not None
    assert changes(revisions[0].snapshot, revisions[1].snapshot) == [
        "step 2 delay: 1d → 1d12h", "step 2 discount %: 15 → 25"]
    history = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "step 2 discount %: 15 → 25" in history and "marketer@shop.example" in history

    # Saving the same thing again is not a new version.
    client.post(f"/campaigns/{campaign.id}", data=_form(after_data, token))
    assert _campaign(database, store_id, "abandoned_cart")[0].version == after.version

    # Restoring the file's version makes it current again, as a new version.
    assert client.post(f"/campaigns/{campaign.id}/revisions/{revisions[0].id}/restore", data={"csrf_token": token}).status_code == 302
    restored, restored_data, revisions = _campaign(database, store_id, "abandoned_cart")
    assert restored_data == data and restored.version == campaign.version + 2 and len(revisions) == 3


def test_the_switch_turns_a_campaign_off_as_a_new_version(board, database) -> None:
    app, store_id = board
    campaign, _data, _ = _campaign(database, store_id, "winback")
    client, token = logged_in(app, "marketer@shop.example")
    assert client.post(f"/campaigns/{campaign.id}/toggle", data={"csrf_token": token}).status_code == 302
    after, after_data, revisions = _campaign(database, store_id, "winback")
    assert not after.enabled and after.edited and after.version == campaign.version + 1
    assert changes(revisions[0].snapshot, revisions[-1].snapshot) == ["on/off: on → off"]
    assert "is now off" in client.get("/campaigns").get_data(as_text=True)


def test_tier_thresholds_are_the_stores_and_checked(board, database) -> None:
    app, store_id = board
    campaign, data, _ = _campaign(database, store_id, "winback")
    client, token = logged_in(app, "marketer@shop.example")
    refused = client.post(f"/campaigns/{campaign.id}", data=_form(data, token, tier_thresholds="120, 60, 400"))
    assert refused.status_code == 422
    assert "increase" in _errors(refused.get_data(as_text=True))["tier_thresholds"]
    refused = client.post(f"/campaigns/{campaign.id}", data=_form(data, token, tier_thresholds="60, 120"))
    assert "one threshold per win-back step" in _errors(refused.get_data(as_text=True))["tier_thresholds"]
    assert client.post(f"/campaigns/{campaign.id}", data=_form(data, token, tier_thresholds="60, 120, 240")).status_code == 302
    with database.transaction() as session:
        store = session.get(Store, store_id)
        assert store is not None and store.setting("tier_thresholds") == [60, 120, 240]
    # Thresholds alone are no new campaign version: they belong to the store.
    assert _campaign(database, store_id, "winback")[0].version == campaign.version


def test_error_paths_name_form_fields() -> None:
    assert field_name("steps[2].delay") == "step-2-delay"
    assert field_name("holdout_percent") == "holdout_percent"
    assert field_name("steps") == "steps"
    assert field_name("line 3, column 1") == "campaign"
