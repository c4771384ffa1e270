"""Check each claimed message at send time and compose those that may go; skip or defer the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.errors import TemplateError
from mailer.models import Campaign, Cart, Contact, Enrollment, Message, Store
from mailer.outbox.compose import ComposedEmail, TemplateLibrary, compose_message
from mailer.outbox.rules import Defer, SendFacts, Skip, decide
from mailer.scheduling.claim import Claim
from mailer.scheduling.planner import QuietHours
from mailer.tracking.suppressions import suppressed_emails

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What a claim turned into: emails to deliver, and counts of the rest."""

    ready: list[ComposedEmail] = field(default_factory=list)
    skipped: int = 0
    deferred: int = 0
    failed: int = 0


def _take_cap_slot(session: Session, contact: Contact, message_id: int, now: datetime, cap_hours: float) -> bool:
    """Atomically claim the contact's frequency-cap slot for this message (a conditional UPDATE).

    Two workers holding two messages for the same contact race here, and exactly one wins; the
    same message taking the slot again after a crash is allowed.
    """
    result = session.execute(
        update(Contact)
        .where(
            Contact.id == contact.id,
            or_(
                Contact.last_emailed_at.is_(None),
                Contact.last_emailed_at <= now - timedelta(hours=cap_hours),
                Contact.last_emailed_message_id == message_id,
            ),
        )
        .values(last_emailed_at=now, last_emailed_message_id=message_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        contact.last_emailed_at, contact.last_emailed_message_id = now, message_id
        return True
    session.refresh(contact, ["last_emailed_at", "last_emailed_message_id"])
    return False


def _release(message: Message) -> None:
    message.claim_token = None
    message.lease_until = None


def prepare_claim(session: Session, claim: Claim, *, settings: Settings, now: datetime, library: TemplateLibrary) -> Prepared:
    """Decide each message of the claim; compose the ones that go. Flushes; the caller commits.

    Only rows still `sending` under this claim's token are touched, so a claim whose lease ran out
    and was taken over by another dispatcher does nothing here.
    """
    prepared = Prepared()
    messages = list(
        session.scalars(
            select(Message).where(
                Message.id.in_(claim.message_ids),
                Message.claim_token == claim.token,
                Message.status == "sending",
            )
        )
    )
    if not messages:
        return prepared
    enrollments = {e.id: e for e in session.scalars(select(Enrollment).where(Enrollment.id.in_({m.enrollment_id for m in messages})))}
    contacts = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_({m.contact_id for m in messages})))}
    campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_({m.campaign_id for m in messages})))}
    stores = {s.id: s for s in session.scalars(select(Store).where(Store.id.in_({m.store_id for m in messages})))}
    cart_ids = {e.cart_id for e in enrollments.values() if e.cart_id is not None}
    carts = {c.id: c for c in session.scalars(select(Cart).where(Cart.id.in_(cart_ids)))} if cart_ids else {}
    suppressed: set[tuple[int, str]] = set()
    for store_id in stores:
        emails = [contacts[m.contact_id].email for m in messages if m.store_id == store_id]
        suppressed |= {(store_id, e) for e in suppressed_emails(session, store_id, emails)}

    # Cart reminders before win-back: with the frequency cap, the first to go wins the slot.
    messages.sort(key=lambda m: (-campaigns[m.campaign_id].priority, m.due_at, m.id))
    for message in messages:
        store, contact = stores[message.store_id], contacts[message.contact_id]
        enrollment, campaign = enrollments[message.enrollment_id], campaigns[message.campaign_id]
        try:
            step = campaign.step(message.step_index)
        except KeyError:  # the step was removed from the campaign after this row was planned
            message.status, message.skip_reason = "skipped", "step_removed"
            _release(message)
            prepared.skipped += 1
            continue
        cap_hours = float(store.setting("frequency_cap_hours"))
        decision = decide(
            SendFacts(
                now=now,
                enrollment_status=enrollment.status,
                enrollment_exit_reason=enrollment.exit_reason,
                is_control=message.is_control,
                campaign_enabled=campaign.enabled,
                suppressed=(store.id, contact.email) in suppressed,
                unsubscribed=contact.unsubscribed_at is not None,
                consent=contact.consent,
                is_customer=contact.orders_count > 0,
                step_requires_consent=step.requires_consent,
                store_allows_first_without_consent=bool(store.setting("cart_first_reminder_without_consent")),
                store_soft_opt_in=bool(store.setting("soft_opt_in_customers")),
                quiet_hours=QuietHours.parse(store.setting("quiet_hours")),
                timezone=contact.timezone,
                store_timezone=store.timezone,
                last_emailed_at=contact.last_emailed_at,
                last_emailed_message_id=contact.last_emailed_message_id,
                message_id=message.id,
                cap_hours=cap_hours,
            )
        )
        if isinstance(decision, Skip):
            message.status, message.skip_reason = "skipped", decision.reason
            _release(message)
            prepared.skipped += 1
            continue
        if isinstance(decision, Defer):
            message.status, message.due_at = "planned", decision.until
            _release(message)
            prepared.deferred += 1
            continue
        if not _take_cap_slot(session, contact, message.id, now, cap_hours):
            message.status = "planned"
            message.due_at = (contact.last_emailed_at or now) + timedelta(hours=cap_hours)
            _release(message)
            prepared.deferred += 1
            continue
        cart = carts.get(enrollment.cart_id) if enrollment.cart_id else None
        try:
            prepared.ready.append(
                compose_message(
                    session, message, store=store, contact=contact, campaign=campaign, step=step,
                    cart=cart, settings=settings, library=library, now=now,
                )
            )
        except TemplateError as exc:
            # A template that breaks at send time fails its message loudly, not the whole batch.
            log.error("message %s: template error: %s", message.id, exc)
            message.status, message.last_error = "failed", str(exc)[:2000]
            _release(message)
            prepared.failed += 1
    session.flush()
    return prepared
