"""Campaigns: definitions loaded from campaigns/*.yaml and synced into each store's rows."""

from mailer.campaigns.definitions import (
    CAMPAIGNS_DIR,
    CampaignDefinition,
    StepDefinition,
    definition_hash,
    load_definitions,
    parse_definition,
    parse_duration,
    template_names,
)
from mailer.campaigns.sync import sync_campaigns

__all__ = [
    "CAMPAIGNS_DIR",
    "CampaignDefinition",
    "StepDefinition",
    "definition_hash",
    "load_definitions",
    "parse_definition",
    "parse_duration",
    "sync_campaigns",
    "template_names",
]
