"""Test sends: a template rendered with sample data and delivered now, outside the outbox."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.delivery import Envelope, Transport, build_mime
from mailer.errors import NotFound
from mailer.ingest.identity import normalize_email
from mailer.models import Campaign, CampaignStep, Store
from mailer.outbox.compose import outgoing_email
from mailer.rendering import compile_template, load_template, render_email, sample_context
from mailer.rendering.context import store_context
from mailer.templates_store import template_overrides

DEFAULT_TEST_SUBJECT = "[Test] {{ store.name }}: {{ campaign.name }}"


def subject_for_template(session: Session, store_id: int, template_name: str) -> str:
    """The subject a campaign step uses with this template, else a generic test subject."""
    subject = session.scalar(
        select(CampaignStep.subject)
        .join(Campaign, Campaign.id == CampaignStep.campaign_id)
        .where(Campaign.store_id == store_id, CampaignStep.template == template_name)
        .limit(1)
    )
    return subject or DEFAULT_TEST_SUBJECT


@dataclass(frozen=True)
class SampleEmail:
    """A rendered test email, ready for the transport, and a summary for the caller."""

    envelope: Envelope
    data: bytes
    summary: dict[str, Any]


def compose_test_email(
    session: Session,
    settings: Settings,
    *,
    store_id: int,
    template_name: str,
    to_email: str,
    now: datetime,
    subject: str | None = None,
    overrides: dict[str, tuple[str, str]] | None = None,
) -> SampleEmail:
    """Render `template_name` with sample data as the store would send it.

    Test sends record nothing in the outbox or the reports; their unsubscribe link leads to a page
    that says so. The caller delivers it once its transaction is over (the capture transport
    writes in a transaction of its own).
    """
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound(f"no store with id {store_id}")
    to_email = normalize_email(to_email)
    if overrides is None:  # the store's saved edits, as its real emails would use them
        overrides = template_overrides(session, store.id)
    compiled = compile_template(load_template(template_name, overrides=overrides or None))
    context = sample_context(template=template_name)
    context["store"] = store_context(store)
    context["campaign"] = {"key": "test", "name": f"Test of {template_name}"}
    unsubscribe = f"{settings.base_url}/u/test-send"
    context["unsubscribe_url"] = unsubscribe
    # Reason links of a test send lead to the same do-nothing page as its unsubscribe link.
    context["reasons"] = [{**reason, "url": unsubscribe} for reason in context["reasons"]]
    rendered = render_email(compiled, subject or subject_for_template(session, store.id, template_name), context)
    message_id = f"<test.{secrets.token_hex(8)}@{store.domain}>"
    envelope, outgoing = outgoing_email(
        store=store, to_email=to_email, to_name="", subject=rendered.subject, html=rendered.html,
        text=rendered.text, message_id=message_id, unsubscribe=unsubscribe,
    )
    data = build_mime(outgoing, now)
    summary = {"to": to_email, "template": template_name, "subject": rendered.subject, "message_id": message_id}
    return SampleEmail(envelope=envelope, data=data, summary=summary)


def deliver_test_email(transport: Transport, email: SampleEmail) -> dict[str, Any]:
    """Send a composed test email; returns its summary."""
    transport.send(email.envelope, email.data)
    return email.summary
