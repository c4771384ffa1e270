"""Sync campaign definitions into a store's Campaign and CampaignStep rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from mailer.campaigns.definitions import CampaignDefinition, definition_hash, load_definitions
from mailer.errors import CampaignDefinitionError
from mailer.models.campaign import Campaign, CampaignStep
from mailer.models.enrollment import Enrollment
from mailer.models.store import Store


def sync_campaigns(
    session: Session,
    store: Store,
    now: datetime,
    definitions: Mapping[str, CampaignDefinition] | None = None,
) -> list[Campaign]:
    """Create or update the store's campaigns from the definitions (default: campaigns/*.yaml).

    A missing campaign is created at version 1. One whose definition changed is updated in place
    and its version bumped, unless a marketer has edited it in the dashboard (`edited`), which
    always wins. Campaigns no longer defined stay as they are: enrollments and reports point at
    them. Returns the definitions' campaigns in key order; flushes, never commits.
    """
    if definitions is None:
        definitions = load_definitions()
    if store.id is None:
        session.flush()  # a store added in this transaction gets its id
    existing = {
        campaign.key: campaign
        for campaign in session.scalars(select(Campaign).where(Campaign.store_id == store.id))
    }
    synced: list[Campaign] = []
    for key in sorted(definitions):
        defn = definitions[key]
        digest = definition_hash(defn)
        campaign = existing.get(defn.key)
        if campaign is None:
            campaign = Campaign(
                store_id=store.id,
                key=defn.key,
                version=1,
                definition_hash=digest,
                edited=False,
                updated_at=now,
            )
            _apply(campaign, defn)
            session.add(campaign)
        elif not campaign.edited and campaign.definition_hash != digest:
            if campaign.kind != defn.kind and _has_enrollments(session, store, campaign):
                # Enrollments and planned messages were made under the old kind's rules.
                raise CampaignDefinitionError(
                    f"campaign {defn.key!r}: kind: cannot change from {campaign.kind!r} to "
                    f"{defn.kind!r} once contacts are enrolled; define a new campaign instead"
                )
            _apply(campaign, defn)
            campaign.version += 1
            campaign.definition_hash = digest
            campaign.updated_at = now
        synced.append(campaign)
    session.flush()
    return synced


def _apply(campaign: Campaign, defn: CampaignDefinition) -> None:
    """Copy the definition onto the campaign, updating its steps in place by index."""
    campaign.name = defn.name
    campaign.kind = defn.kind
    campaign.enabled = defn.enabled
    campaign.audience = defn.audience
    campaign.holdout_percent = defn.holdout_percent
    campaign.priority = defn.priority
    # Steps keep their rows (and ids) by index; messages refer to steps by index, so a step
    # that disappears only stops being planned.
    by_index = {step.index: step for step in campaign.steps}
    steps: list[CampaignStep] = []
    for step_defn in defn.steps:
        step = by_index.get(step_defn.index) or CampaignStep(index=step_defn.index)
        step.name = step_defn.name
        step.delay_minutes = step_defn.delay_minutes
        step.window_minutes = step_defn.window_minutes
        step.tier = step_defn.tier
        step.discount_percent = step_defn.discount_percent
        step.subject = step_defn.subject
        step.template = step_defn.template
        step.requires_consent = step_defn.requires_consent
        steps.append(step)
    campaign.steps = steps  # delete-orphan removes steps the definition no longer has


def _has_enrollments(session: Session, store: Store, campaign: Campaign) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Enrollment.store_id == store.id, Enrollment.campaign_id == campaign.id
                )
            )
        )
    )
