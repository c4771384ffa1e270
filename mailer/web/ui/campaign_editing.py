"""Editing a campaign in the dashboard: validate with the campaign files' rules, apply, version, keep history.

Plain functions on a Session (no Flask): the campaign is written as the same data a
campaigns/*.yaml file holds and checked by mailer.campaigns.definitions, so the dashboard
and the files can never disagree on what a valid campaign is.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.campaigns.definitions import CampaignDefinition, parse_definition
from mailer.errors import CampaignDefinitionError, TemplateError
from mailer.models import Campaign, CampaignRevision, CampaignStep, Store
from mailer.rendering import render_subject, sample_context
from mailer.segments.lifecycle import check_thresholds
from mailer.templates_store import template_exists

Errors = dict[str, str]

# "steps[2].delay" → step 2's delay; "holdout_percent" → a campaign field.
_PATH = re.compile(r"^(?:steps\[(?P<index>\d+)\]\.)?(?P<key>[a-z_]+)$")
# Beyond this many rounds the validator is not making progress (see validate_definition).
MAX_ROUNDS = 40


def duration_text(minutes: int) -> str:
    """Minutes as campaign files write them: "0", "30m", "24h", "1d12h"."""
    if not minutes:
        return "0"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n)


def snapshot(campaign: Campaign) -> dict[str, Any]:
    """The campaign as campaign-file data (durations as text), what a revision stores."""
    steps = []
    for step in campaign.steps:
        data: dict[str, Any] = {
            "name": step.name,
            "delay": duration_text(step.delay_minutes),
            "window": duration_text(step.window_minutes),
            "discount_percent": step.discount_percent,
            "subject": step.subject,
            "template": step.template,
            "requires_consent": step.requires_consent,
        }
        if step.tier is not None:
            data["tier"] = step.tier
        steps.append(data)
    return {
        "name": campaign.name,
        "kind": campaign.kind,
        "enabled": campaign.enabled,
        "priority": campaign.priority,
        "audience": campaign.audience,
        "holdout_percent": campaign.holdout_percent,
        "steps": steps,
    }


def field_name(path: str) -> str:
    """The form field a definition error path names: "steps[2].delay" → "step-2-delay"."""
    match = _PATH.match(path)
    if match is None:
        return "campaign"
    if match.group("index"):
        return f"step-{match.group('index')}-{match.group('key')}"
    return match.group("key")


def _split(message: str, source: str) -> tuple[str, str]:
    """("steps[2].delay", "must be a duration…") from "winback.yaml: steps[2].delay: must be…"."""
    rest = message.removeprefix(f"{source}: ")
    path, sep, reason = rest.partition(": ")
    return (path, reason) if sep else ("", rest)


def _restore(data: dict[str, Any], saved: Mapping[str, Any], path: str) -> bool:
    """Put the saved value back at `path`; False when there is none to put back."""
    match = _PATH.match(path)
    if match is None:
        return False
    key = match.group("key")
    if match.group("index"):
        position = int(match.group("index")) - 1
        saved_steps = saved.get("steps") or []
        if not 0 <= position < min(len(data["steps"]), len(saved_steps)) or key not in saved_steps[position]:
            return False
        data["steps"][position][key] = saved_steps[position][key]
        return True
    if key not in saved:
        return False
    data[key] = saved[key]
    return True


def validate_definition(key: str, data: Mapping[str, Any], saved: Mapping[str, Any]) -> tuple[CampaignDefinition | None, Errors]:
    """Check `data` with the campaign files' rules; every mistake found, by form field.

    The file validator stops at the first mistake. To report the others too, the faulty value
    is replaced by the saved one (valid, since it was saved) and the check runs again, until it
    passes or cannot make progress. Returns the definition when there was no mistake at all.
    """
    source = f"{key}.yaml"
    attempt = copy.deepcopy(dict(data))
    errors: Errors = {}
    for _ in range(MAX_ROUNDS):
        text = yaml.safe_dump(attempt, sort_keys=False, allow_unicode=True, width=1_000_000)
        try:
            definition = parse_definition(text, source)
        except CampaignDefinitionError as exc:
            path, reason = _split(exc.message, source)
            name = field_name(path)
            if name in errors:
                break
            errors[name] = reason
            if not _restore(attempt, saved, path):
                break
            continue
        return (None if errors else definition), errors
    return None, errors


def check_subject(subject: str, template: str) -> str | None:
    """Why a subject line does not render with sample data, or None."""
    try:
        render_subject(subject, sample_context(template=template))
    except TemplateError as exc:
        # "subject, line 1: unexpected '}'" → "line 1: unexpected '}'": the field says which.
        return exc.message.removeprefix("subject").lstrip(",: ")
    return None


def parse_thresholds(raw: str, steps: int) -> tuple[list[int] | None, str | None]:
    """Tier thresholds typed as "90, 180, 360": the list, or why it cannot be used."""
    try:
        values = [int(part) for part in re.split(r"[,\s]+", raw.strip()) if part]
    except ValueError:
        return None, "write whole numbers of days separated by commas, e.g. 90, 180, 360"
    try:
        values = check_thresholds(values)
    except ValueError as exc:
        return None, str(exc)
    if len(values) != steps:
        return None, f"give one threshold per win-back step: {steps}, got {len(values)}"
    return values, None


def form_data(form: Mapping[str, str], saved: Mapping[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The campaign-file data a submitted edit form describes, and fields that are not even numbers.

    Fields the form does not show (kind, priority, tiers, consent of later steps) keep their
    saved values.
    """
    errors: Errors = {}
    data = copy.deepcopy(dict(saved))

    def whole(field: str, fallback: int) -> int:
        raw = (form.get(field) or "").strip()
        try:
            return int(raw)
        except ValueError:
            errors[field] = "must be a whole number"
            return fallback

    data["name"] = (form.get("name") or "").strip()
    data["enabled"] = form.get("enabled") == "on"
    data["audience"] = form.get("audience", saved["audience"])
    data["holdout_percent"] = whole("holdout_percent", saved["holdout_percent"])
    for position, step in enumerate(data["steps"], start=1):
        prefix = f"step-{position}-"
        step["name"] = (form.get(prefix + "name") or "").strip()
        step["delay"] = (form.get(prefix + "delay") or "").strip()
        step["window"] = (form.get(prefix + "window") or "").strip() or "0"
        step["discount_percent"] = whole(prefix + "discount_percent", step["discount_percent"])
        step["subject"] = (form.get(prefix + "subject") or "").strip()
        step["template"] = (form.get(prefix + "template") or "").strip()
        if prefix + "requires_consent_shown" in form:
            step["requires_consent"] = form.get(prefix + "requires_consent") == "on"
    return data, errors


def check_campaign(
    campaign: Campaign, data: Mapping[str, Any], overrides: dict[str, tuple[str, str]]
) -> tuple[CampaignDefinition | None, Errors]:
    """Validate edited campaign data: the files' rules, then each step's subject and template."""
    saved = snapshot(campaign)
    definition, errors = validate_definition(campaign.key, data, saved)
    for position, step in enumerate(data["steps"], start=1):
        prefix = f"step-{position}-"
        template = str(step.get("template") or "")
        if prefix + "template" not in errors and template and not template_exists(template, overrides):
            errors[prefix + "template"] = f"there is no template called {template!r}"
        subject = str(step.get("subject") or "")
        if prefix + "subject" not in errors and subject:
            problem = check_subject(subject, template)
            if problem:
                errors[prefix + "subject"] = problem
    return (definition if not errors else None), errors


def _apply(campaign: Campaign, definition: CampaignDefinition) -> None:
    """Copy a validated definition onto the campaign, keeping step rows by index."""
    campaign.name = definition.name
    campaign.enabled = definition.enabled
    campaign.audience = definition.audience
    campaign.holdout_percent = definition.holdout_percent
    campaign.priority = definition.priority
    by_index = {step.index: step for step in campaign.steps}
    steps = []
    for step_definition in definition.steps:
        step = by_index.get(step_definition.index) or CampaignStep(index=step_definition.index)
        step.name = step_definition.name
        step.delay_minutes = step_definition.delay_minutes
        step.window_minutes = step_definition.window_minutes
        step.tier = step_definition.tier
        step.discount_percent = step_definition.discount_percent
        step.subject = step_definition.subject
        step.template = step_definition.template
        step.requires_consent = step_definition.requires_consent
        steps.append(step)
    campaign.steps = steps


def save_campaign(
    session: Session, campaign: Campaign, definition: CampaignDefinition, *, user_id: int | None, now: datetime
) -> CampaignRevision | None:
    """Apply a validated edit: bump the version, mark the campaign edited, record the revision.

    Returns None (and changes nothing) when the edit changes nothing. The first edit also
    records the campaign as it was, so the history starts from what the campaign file said.
    """
    before = snapshot(campaign)
    _apply(campaign, definition)
    after = snapshot(campaign)
    if after == before:
        return None
    has_history = session.scalar(
        select(CampaignRevision.id).where(CampaignRevision.campaign_id == campaign.id).limit(1)
    )
    if has_history is None:
        session.add(CampaignRevision(
            store_id=campaign.store_id, campaign_id=campaign.id, version=campaign.version,
            snapshot=before, user_id=None, created_at=campaign.updated_at,
        ))
    campaign.version += 1
    campaign.edited = True  # from now on the YAML sync leaves this campaign alone
    campaign.updated_at = now
    revision = CampaignRevision(
        store_id=campaign.store_id, campaign_id=campaign.id, version=campaign.version,
        snapshot=after, user_id=user_id, created_at=now,
    )
    session.add(revision)
    session.flush()
    return revision


def set_thresholds(store: Store, thresholds: list[int]) -> bool:
    """Store new tier thresholds; False when they are the ones already in force."""
    if list(store.setting("tier_thresholds")) == thresholds:
        return False
    # A new dict, so the JSON column is seen as changed.
    store.settings = {**(store.settings or {}), "tier_thresholds": thresholds}
    return True


_LABELS = {
    "name": "name", "enabled": "on/off", "audience": "audience", "holdout_percent": "holdout %",
    "priority": "priority", "delay": "delay", "window": "window", "discount_percent": "discount %",
    "subject": "subject", "template": "template", "requires_consent": "needs consent", "tier": "tier",
}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """What changed between two snapshots, in words ("step 2 discount %: 15 → 20")."""
    if before is None:
        return ["as defined in the campaign file"]
    found = []
    for key, label in _LABELS.items():
        if key in after and before.get(key) != after.get(key):
            found.append(f"{label}: {_shown(before.get(key))} → {_shown(after.get(key))}")
    old_steps, new_steps = before.get("steps") or [], after.get("steps") or []
    for position, step in enumerate(new_steps, start=1):
        old = old_steps[position - 1] if position <= len(old_steps) else {}
        for key, label in _LABELS.items():
            if key in step and old.get(key) != step.get(key):
                found.append(f"step {position} {label}: {_shown(old.get(key, '—'))} → {_shown(step[key])}")
    return found or ["no change"]
