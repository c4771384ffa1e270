"""Campaign pages: the list with on/off, the edit form (steps, audience, holdout, tiers) and its history."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from mailer.clock import utcnow
from mailer.models import Campaign, CampaignRevision, Enrollment, Message, User
from mailer.models.campaign import AUDIENCES
from mailer.segments.queries import store_thresholds
from mailer.templates_store import file_template_names, template_overrides
from mailer.web.database import db_session
from mailer.web.ui.auth import login_required
from mailer.web.ui.blueprint import bp
from mailer.web.ui.campaign_editing import (
    changes,
    check_campaign,
    form_data,
    parse_thresholds,
    save_campaign,
    set_thresholds,
    snapshot,
    validate_definition,
)

AUDIENCE_LABELS = {
    "one_time": "One-time buyers",
    "repeat": "Repeat buyers",
    "all": "Every customer",
}


def campaign_or_404(campaign_id: int) -> Campaign:
    """The logged-in store's campaign with this id; 404 for any other (another store's included)."""
    campaign = db_session().scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.store_id == g.store.id)
    )
    if campaign is None:
        abort(404)
    return campaign


@bp.get("/campaigns")
@login_required
def campaigns() -> str:
    """Every campaign of the store with its state, audience, holdout and what it has sent."""
    session = db_session()
    rows = list(session.scalars(
        select(Campaign).where(Campaign.store_id == g.store.id).order_by(Campaign.priority.desc(), Campaign.key)
    ))
    sent = dict(session.execute(
        select(Message.campaign_id, func.count(Message.id))
        .where(Message.store_id == g.store.id, Message.status == "sent")
        .group_by(Message.campaign_id)
    ).all())
    active = dict(session.execute(
        select(Enrollment.campaign_id, func.count(Enrollment.id))
        .where(Enrollment.store_id == g.store.id, Enrollment.status == "active")
        .group_by(Enrollment.campaign_id)
    ).all())
    return render_template(
        "ui/campaigns.html", campaigns=rows, sent=sent, active=active, audiences=AUDIENCE_LABELS,
        thresholds=store_thresholds(g.store),
    )


@bp.post("/campaigns/<int:campaign_id>/toggle")
@login_required
def toggle_campaign(campaign_id: int) -> Response:
    """Switch a campaign on or off (a versioned edit like any other)."""
    campaign = campaign_or_404(campaign_id)
    data = snapshot(campaign)
    data["enabled"] = not campaign.enabled
    definition, errors = validate_definition(campaign.key, data, snapshot(campaign))
    if definition is None:
        flash(f"{campaign.name} could not be switched: {'; '.join(errors.values())}", "error")
    else:
        save_campaign(db_session(), campaign, definition, user_id=g.user.id, now=utcnow())
        flash(f"{campaign.name} is now {'on' if campaign.enabled else 'off'}.", "success")
    return redirect(url_for("ui.campaigns"))


def _template_choices() -> list[str]:
    names = {*file_template_names(), *template_overrides(db_session(), g.store.id)}
    names.discard("base")  # the layout is not an email of its own
    return sorted(names)


def _history(campaign: Campaign) -> list[dict[str, Any]]:
    rows = db_session().execute(
        select(CampaignRevision, User.email)
        .outerjoin(User, User.id == CampaignRevision.user_id)
        .where(CampaignRevision.campaign_id == campaign.id, CampaignRevision.store_id == g.store.id)
        .order_by(CampaignRevision.version)
    ).all()
    history = []
    previous = None
    for revision, email in rows:
        history.append({
            "revision": revision, "by": email, "changes": changes(previous, revision.snapshot),
            "current": revision.version == campaign.version,
        })
        previous = revision.snapshot
    return list(reversed(history))


def _edit_page(campaign: Campaign, values: dict[str, Any], errors: dict[str, str], thresholds: str, status: int = 200) -> tuple[str, int]:
    return render_template(
        "ui/campaign_edit.html", campaign=campaign, values=values, errors=errors,
        thresholds=thresholds, audiences=AUDIENCE_LABELS, audience_keys=AUDIENCES,
        templates=_template_choices(), history=_history(campaign), threshold_days=store_thresholds(g.store),
    ), status


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def edit_campaign(campaign_id: int) -> tuple[str, int]:
    """The edit form, filled with the campaign as it is."""
    campaign = campaign_or_404(campaign_id)
    thresholds = ", ".join(str(t) for t in store_thresholds(g.store))
    return _edit_page(campaign, snapshot(campaign), {}, thresholds)


@bp.post("/campaigns/<int:campaign_id>")
@login_required
def save_campaign_form(campaign_id: int) -> Response | tuple[str, int]:
    """Validate and save an edit; on a mistake show the form again with each error beside its field."""
    campaign = campaign_or_404(campaign_id)
    data, errors = form_data(request.form, snapshot(campaign))
    definition, rule_errors = check_campaign(campaign, data, template_overrides(db_session(), g.store.id))
    errors = {**rule_errors, **errors}  # "not a number" says more than the rule it then broke
    thresholds_text = request.form.get("tier_thresholds", "")
    thresholds = None
    if campaign.kind == "winback":
        thresholds, problem = parse_thresholds(thresholds_text, len(campaign.steps))
        if problem:
            errors["tier_thresholds"] = problem
    if errors or definition is None:
        return _edit_page(campaign, data, errors, thresholds_text, status=422)
    revision = save_campaign(db_session(), campaign, definition, user_id=g.user.id, now=utcnow())
    moved = thresholds is not None and set_thresholds(g.store, thresholds)
    if revision is None and not moved:
        flash("Nothing to save: the campaign is as it was.", "info")
    else:
        flash(f"Saved. {campaign.name} is now at version {campaign.version}.", "success")
    return redirect(url_for("ui.edit_campaign", campaign_id=campaign.id))


@bp.post("/campaigns/<int:campaign_id>/revisions/<int:revision_id>/restore")
@login_required
def restore_campaign(campaign_id: int, revision_id: int) -> Response | tuple[str, int]:
    """Make an earlier revision current again, as a new version."""
    campaign = campaign_or_404(campaign_id)
    revision = db_session().scalar(select(CampaignRevision).where(
        CampaignRevision.id == revision_id, CampaignRevision.campaign_id == campaign.id,
        CampaignRevision.store_id == g.store.id,
    ))
    if revision is None:
        abort(404)
    definition, errors = check_campaign(campaign, revision.snapshot, template_overrides(db_session(), g.store.id))
    if definition is None:
        thresholds = ", ".join(str(t) for t in store_thresholds(g.store))
        return _edit_page(campaign, revision.snapshot, errors, thresholds, status=422)
    if save_campaign(db_session(), campaign, definition, user_id=g.user.id, now=utcnow()) is None:
        flash(f"Version {revision.version} is what the campaign already is.", "info")
    else:
        flash(f"Restored version {revision.version} as version {campaign.version}.", "success")
    return redirect(url_for("ui.edit_campaign", campaign_id=campaign.id))
