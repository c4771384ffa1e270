"""The step a message follows: its campaign step, or a reason's follow-up built on one."""

from __future__ import annotations

from dataclasses import dataclass

from mailer.campaigns.reasons import FOLLOW_UP_BASE
from mailer.models import Campaign, Message


@dataclass(frozen=True)
class EffectiveStep:
    """What composing and the send rules read of a step."""

    index: int
    discount_percent: int
    subject: str
    template: str
    requires_consent: bool


def effective_step(campaign: Campaign, message: Message) -> EffectiveStep:
    """The campaign step of the message, with a follow-up's overrides; KeyError when it is gone."""
    base = campaign.step(message.step_index - FOLLOW_UP_BASE if message.step_index > FOLLOW_UP_BASE else message.step_index)
    return EffectiveStep(
        index=base.index,
        discount_percent=base.discount_percent if message.discount_override is None else message.discount_override,
        subject=message.subject_override or base.subject,
        template=message.template_override or base.template,
        requires_consent=base.requires_consent,
    )
