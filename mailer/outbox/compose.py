"""Turn one outbox row into the exact email to send: context, coupon, render, links, headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.delivery import Envelope, OutgoingEmail, build_mime
from mailer.models import Campaign, CampaignStep, Cart, Contact, Link, Message, Order, Store
from mailer.rendering import CompiledTemplate, compile_template, load_template, render_email
from mailer.rendering.context import build_context
from mailer.rendering.coupons import issue_coupon
from mailer.rendering.links import track_links
from mailer.tracking.tokens import make_token


@dataclass
class TemplateLibrary:
    """Compiled templates by name for one batch: each is read and inlined at most once."""

    compiled: dict[str, CompiledTemplate] = field(default_factory=dict)

    def get(self, name: str) -> CompiledTemplate:
        """The compiled (CSS-inlined) template called `name`."""
        if name not in self.compiled:
            self.compiled[name] = compile_template(load_template(name))
        return self.compiled[name]


@dataclass(frozen=True)
class ComposedEmail:
    """A message ready for the transport."""

    message_id: int
    envelope: Envelope
    data: bytes


def message_id_header(message: Message, store: Store) -> str:
    """A Message-ID that is the same on every retry of this row, so receivers can drop repeats."""
    return f"<m{message.id}.s{store.id}@{store.domain}>"


def unsubscribe_url(settings: Settings, message_id: int) -> str:
    """The one-click unsubscribe URL for a message (also the List-Unsubscribe target)."""
    return f"{settings.base_url}/u/{make_token(settings.secret_key, 'unsubscribe', message_id)}"


def build_email(
    *,
    store: Store,
    to_email: str,
    to_name: str,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    unsubscribe: str,
    now: datetime,
    outbox_id: int | None = None,
) -> tuple[Envelope, bytes]:
    """The envelope and bytes of a marketing email, with both List-Unsubscribe headers (RFC 8058)."""
    headers = [
        ("List-Unsubscribe", f"<{unsubscribe}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    if outbox_id is not None:
        headers.append(("X-Mailer-Message", str(outbox_id)))
    email = OutgoingEmail(
        sender=store.from_address,
        sender_name=store.sender_name or store.name,
        recipient=to_email,
        recipient_name=to_name,
        subject=subject,
        html=html,
        text=text,
        message_id=message_id,
        headers=tuple(headers),
    )
    envelope = Envelope(
        sender=store.from_address, recipient=to_email, store_id=store.id, message_id=outbox_id, subject=subject
    )
    return envelope, build_mime(email, now)


def compose_message(
    session: Session,
    message: Message,
    *,
    store: Store,
    contact: Contact,
    campaign: Campaign,
    step: CampaignStep,
    cart: Cart | None,
    settings: Settings,
    library: TemplateLibrary,
    now: datetime,
) -> ComposedEmail:
    """Render and build the email for `message`, recording its coupon and links; flushes.

    Safe to call again for the same row (a reclaimed send): the coupon is reused and the links are
    rewritten, so the email is the same apart from its Date.
    """
    coupon = None
    if step.discount_percent > 0:
        coupon = issue_coupon(
            session, message, step.discount_percent, now,
            valid_days=int(store.setting("coupon_valid_days")), prefix=store.coupon_prefix,
        )
    last_order = session.scalar(
        select(Order).where(Order.contact_id == contact.id).order_by(Order.placed_at.desc()).limit(1)
    )
    unsubscribe = unsubscribe_url(settings, message.id)
    context = build_context(
        store=store, contact=contact, unsubscribe_url=unsubscribe, cart=cart, coupon=coupon,
        last_order=last_order, step=step, campaign=campaign, timezone=contact.timezone or store.timezone,
    )
    compiled = library.get(step.template)
    rendered = render_email(compiled, step.subject, context)
    tracked = track_links(
        rendered.html,
        message_id=message.id,
        base_url=settings.base_url,
        secret=settings.secret_key,
        skip_urls=frozenset({unsubscribe}),
    )
    session.execute(delete(Link).where(Link.message_id == message.id))
    session.add_all(
        Link(store_id=store.id, message_id=message.id, position=position, url=url, kind=kind)
        for position, url, kind in tracked.links
    )
    message.subject = rendered.subject
    message.to_email = contact.email
    message.message_id_header = message_id_header(message, store)
    message.template_version = compiled.version
    envelope, data = build_email(
        store=store, to_email=contact.email, to_name=contact.full_name, subject=rendered.subject,
        html=tracked.html, text=rendered.text, message_id=message.message_id_header,
        unsubscribe=unsubscribe, now=now, outbox_id=message.id,
    )
    return ComposedEmail(message_id=message.id, envelope=envelope, data=data)
