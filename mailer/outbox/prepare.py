"""Check each claimed message at send time and compose those that may go; skip or defer the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.db import among, is_postgresql
from mailer.errors import TemplateError
from mailer.models import Campaign, Cart, Contact, Enrollment, Message, Store
from mailer.outbox.compose import (
    ComposedEmail,
    TemplateLibrary,
    compose_message,
    load_batch_facts,
    store_links,
)
from mailer.outbox.rules import Defer, SendFacts, Skip, decide
from mailer.outbox.steps import EffectiveStep, effective_step
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


def _take_cap_slots(session: Session, wanted: dict[int, int], now: datetime, cap_hours: float) -> set[int]:
    """Atomically claim the frequency-cap slot of each contact for its message; returns the winners.

    One conditional UPDATE for the batch: a contact whose slot another worker took meanwhile
    is simply not returned. The same message retaking its slot after a crash is allowed.
    """
    if not wanted:
        return set()
    message_of: ColumnElement[int]
    if is_postgresql(session):
        # UPDATE … FROM unnest(contact ids, message ids): a short statement whatever the batch
        # size, where the CASE below has a branch (and two parameters) per contact.
        pairs = (
            func.unnest(
                bindparam("contact_ids", list(wanted), type_=ARRAY(BigInteger)),
                bindparam("message_ids", list(wanted.values()), type_=ARRAY(BigInteger)),
            )
            .table_valued("contact_id", "message_id")
            .render_derived()
        )
        chosen, message_of = Contact.id == pairs.c.contact_id, pairs.c.message_id
    else:
        chosen, message_of = Contact.id.in_(list(wanted)), case(wanted, value=Contact.id)
    conditions = [Contact.last_emailed_at.is_(None), Contact.last_emailed_message_id == message_of]
    if cap_hours > 0:
        conditions.append(Contact.last_emailed_at <= now - timedelta(hours=cap_hours))
    else:
        conditions.append(Contact.last_emailed_at.is_not(None))
    result = session.execute(
        update(Contact)
        .where(chosen, or_(*conditions))
        .values(last_emailed_at=now, last_emailed_message_id=message_of)
        .returning(Contact.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


def _release(message: Message) -> None:
    message.claim_token = None
    message.lease_until = None


def _skip(message: Message, reason: str, prepared: Prepared) -> None:
    message.status, message.skip_reason = "skipped", reason
    _release(message)
    prepared.skipped += 1


def _defer(message: Message, until: datetime, prepared: Prepared) -> None:
    message.status, message.due_at = "planned", until
    _release(message)
    prepared.deferred += 1


def _within_caps(
    session: Session,
    candidates: list[tuple[Message, EffectiveStep]],
    stores: dict[int, Store],
    contacts: dict[int, Contact],
    now: datetime,
    prepared: Prepared,
) -> list[tuple[Message, EffectiveStep]]:
    """The candidates that win their contact's frequency-cap slot; the others are deferred, never dropped."""
    first_per_contact: dict[int, tuple[Message, EffectiveStep]] = {}
    later: list[Message] = []
    for message, step in candidates:
        if message.contact_id in first_per_contact:
            later.append(message)  # one marketing email per contact per batch: the highest priority
        else:
            first_per_contact[message.contact_id] = (message, step)
    by_cap: dict[float, dict[int, int]] = {}
    for contact_id, (message, _step) in first_per_contact.items():
        cap = float(stores[message.store_id].setting("frequency_cap_hours"))
        by_cap.setdefault(cap, {})[contact_id] = message.id
    winners: set[int] = set()
    for cap, wanted in by_cap.items():
        winners |= _take_cap_slots(session, wanted, now, cap)
    losers = [c for c in first_per_contact if c not in winners] + [m.contact_id for m in later]
    if losers:
        # Another worker took the slot meanwhile: read when, so the defer lands right after the cap.
        session.scalars(
            select(Contact).where(among(session, Contact.id, set(losers))).execution_options(populate_existing=True)
        ).all()
    for message in later + [first_per_contact[c][0] for c in first_per_contact if c not in winners]:
        contact = contacts[message.contact_id]
        cap = float(stores[message.store_id].setting("frequency_cap_hours"))
        _defer(message, (contact.last_emailed_at or now) + timedelta(hours=cap), prepared)
    return [pair for contact_id, pair in first_per_contact.items() if contact_id in winners]


def prepare_claim(session: Session, claim: Claim, *, settings: Settings, now: datetime, library: TemplateLibrary) -> Prepared:
    """Decide each message of the claim; compose the ones that go. Flushes; the caller commits.

    Only rows still `sending` under this claim's token are touched, so a claim whose lease ran out
    and was taken over by another dispatcher does nothing here.
    """
    prepared = Prepared()
    messages = list(
        session.scalars(
            select(Message).where(
                among(session, Message.id, claim.message_ids),
                Message.claim_token == claim.token,
                Message.status == "sending",
            )
        )
    )
    if not messages:
        return prepared
    # What the rules read of an enrollment, as rows: loading entities costs more than the rest.
    enrollments = {
        e.id: e
        for e in session.execute(
            select(Enrollment.id, Enrollment.status, Enrollment.exit_reason, Enrollment.cart_id)
            .where(among(session, Enrollment.id, {m.enrollment_id for m in messages}))
        )
    }
    contacts = {c.id: c for c in session.scalars(select(Contact).where(among(session, Contact.id, {m.contact_id for m in messages})))}
    campaigns = {c.id: c for c in session.scalars(select(Campaign).where(among(session, Campaign.id, {m.campaign_id for m in messages})))}
    stores = {s.id: s for s in session.scalars(select(Store).where(among(session, Store.id, {m.store_id for m in messages})))}
    cart_ids = {e.cart_id for e in enrollments.values() if e.cart_id is not None}
    carts = {c.id: c for c in session.scalars(select(Cart).where(among(session, Cart.id, cart_ids)))} if cart_ids else {}
    suppressed: set[tuple[int, str]] = set()
    for store_id in stores:
        emails = [contacts[m.contact_id].email for m in messages if m.store_id == store_id]
        suppressed |= {(store_id, e) for e in suppressed_emails(session, store_id, emails)}

    # Cart reminders before win-back: with the frequency cap, the first to go wins the slot.
    messages.sort(key=lambda m: (-campaigns[m.campaign_id].priority, m.due_at, m.id))
    candidates: list[tuple[Message, EffectiveStep]] = []
    for message in messages:
        store, contact = stores[message.store_id], contacts[message.contact_id]
        enrollment, campaign = enrollments[message.enrollment_id], campaigns[message.campaign_id]
        try:
            step = effective_step(campaign, message)
        except KeyError:  # the step was removed from the campaign after this row was planned
            _skip(message, "step_removed", prepared)
            continue
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
                cap_hours=float(store.setting("frequency_cap_hours")),
            )
        )
        if isinstance(decision, Skip):
            _skip(message, decision.reason, prepared)
        elif isinstance(decision, Defer):
            _defer(message, decision.until, prepared)
        else:
            candidates.append((message, step))

    going = _within_caps(session, candidates, stores, contacts, now, prepared)
    library.refresh(session, {message.store_id for message, _step in going})
    facts = load_batch_facts(session, [(m, stores[m.store_id], step) for m, step in going], now)
    for message, step in going:
        enrollment = enrollments[message.enrollment_id]
        try:
            prepared.ready.append(
                compose_message(
                    message, store=stores[message.store_id], contact=contacts[message.contact_id],
                    campaign=campaigns[message.campaign_id], step=step,
                    cart=carts.get(enrollment.cart_id) if enrollment.cart_id else None,
                    facts=facts, settings=settings, library=library, now=now,
                )
            )
        except TemplateError as exc:
            # A template that breaks at send time fails its message loudly, not the whole batch.
            log.error("message %s: template error: %s", message.id, exc)
            message.status, message.last_error = "failed", str(exc)[:2000]
            _release(message)
            prepared.failed += 1
    store_links(session, facts)
    session.flush()
    return prepared
