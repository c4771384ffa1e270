"""Turn one outbox row into the exact email to send: context, coupon, render, links, headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from mailer.campaigns.reasons import REASONS
from mailer.config import Settings
from mailer.db import among, is_postgresql, recordset, recordset_rows
from mailer.delivery import Envelope, OutgoingEmail, build_mime
from mailer.models import Campaign, Cart, Contact, Link, Message, Order, Store
from mailer.outbox.steps import EffectiveStep
from mailer.rendering import CompiledTemplate, compile_template, load_template, render_email
from mailer.rendering.context import build_context
from mailer.rendering.coupons import CouponRequest, IssuedCoupon, issue_coupons
from mailer.rendering.links import track_links
from mailer.templates_store import template_overrides
from mailer.tracking.tokens import make_token


@dataclass
class TemplateLibrary:
    """Compiled templates per store for a worker: the files, or the store's saved edits of them.

    `refresh` re-reads which edits are current (one query per store, once per batch), so a
    template saved in the dashboard is used from the next batch on; the costly CSS inlining is
    cached by template version in `compile_template`, so an unchanged template is never redone.
    """

    compiled: dict[tuple[int, str], CompiledTemplate] = field(default_factory=dict)
    overrides: dict[int, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def refresh(self, session: Session, store_ids: set[int]) -> None:
        """Pick up the stores' newest saved templates."""
        for store_id in store_ids:
            current = template_overrides(session, store_id)
            if self.overrides.get(store_id) != current:
                self.overrides[store_id] = current
                self.compiled = {key: value for key, value in self.compiled.items() if key[0] != store_id}

    def get(self, store_id: int, name: str) -> CompiledTemplate:
        """The compiled (CSS-inlined) template called `name`, as this store has it."""
        key = (store_id, name)
        if key not in self.compiled:
            self.compiled[key] = compile_template(load_template(name, overrides=self.overrides.get(store_id) or None))
        return self.compiled[key]


@dataclass
class ComposedEmail:
    """A message ready for the transport; its bytes are serialized on first use (see `build`)."""

    message_id: int
    envelope: Envelope
    email: OutgoingEmail
    date: datetime
    # What the row records of its email once it is sent: subject, to_email, message_id_header,
    # template_version (one of the checkpoint's statements writes them, see finish.record_outcomes).
    record: dict[str, object] = field(default_factory=dict)
    _data: bytes | None = None
    _error: ValueError | None = None

    def build(self) -> None:
        """Serialize the MIME bytes now, keeping an error for `data` to raise: never raises itself.

        The send loop calls it as the previous message's `meanwhile`, so serializing one email
        overlaps the SMTP server's work on the one before.
        """
        if self._data is None and self._error is None:
            try:
                self._data = build_mime(self.email, self.date)
            except ValueError as exc:  # an address or header build_mime refuses
                self._error = exc

    @property
    def data(self) -> bytes:
        """The CRLF MIME bytes; raises the ValueError build_mime raised for this email."""
        self.build()
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data


def message_id_header(message: Message, store: Store) -> str:
    """A Message-ID that is the same on every retry of this row, so receivers can drop repeats."""
    return f"<m{message.id}.s{store.id}@{store.domain}>"


def reason_links(settings: Settings, message_id: int) -> list[dict[str, str]]:
    """The one-click "why did you leave?" answers of a win-back email, each a signed link."""
    return [
        {"key": key, "label": label, "url": f"{settings.base_url}/r/{make_token(settings.secret_key, 'reason', message_id, number)}"}
        for number, (key, label) in enumerate(REASONS.items())
    ]


def unsubscribe_url(settings: Settings, message_id: int) -> str:
    """The one-click unsubscribe URL for a message (also the List-Unsubscribe target)."""
    return f"{settings.base_url}/u/{make_token(settings.secret_key, 'unsubscribe', message_id)}"


def outgoing_email(
    *,
    store: Store,
    to_email: str,
    to_name: str,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    unsubscribe: str,
    outbox_id: int | None = None,
) -> tuple[Envelope, OutgoingEmail]:
    """The envelope and content of a marketing email, with both List-Unsubscribe headers (RFC 8058)."""
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
    return envelope, email


@dataclass
class BatchFacts:
    """What composing a batch needs from the database, loaded in a few queries for all of it."""

    coupons: dict[int, IssuedCoupon] = field(default_factory=dict)  # by message id
    last_orders: dict[int, Row[Any]] = field(default_factory=dict)  # by contact id: placed_at, total, …
    links: list[dict[str, object]] = field(default_factory=list)  # rows to store once composed


def load_batch_facts(session: Session, messages: list[tuple[Message, Store, EffectiveStep]], now: datetime) -> BatchFacts:
    """Issue (or reuse) the batch's coupons and read each contact's last order, in a few queries."""
    requests = [
        CouponRequest(message, step.discount_percent, int(store.setting("coupon_valid_days")), store.coupon_prefix)
        for message, store, step in messages
        if step.discount_percent > 0
    ]
    contact_ids = {message.contact_id for message, _store, _step in messages}
    latest = (
        select(Order.contact_id, func.max(Order.placed_at).label("placed_at"))
        .where(among(session, Order.contact_id, contact_ids))
        .group_by(Order.contact_id)
        .subquery()
    )
    # Only what the template context shows of an order: rows, not entities the session tracks.
    orders = session.execute(
        select(Order.contact_id, Order.placed_at, Order.total, Order.currency, Order.items)
        .join(latest, (Order.contact_id == latest.c.contact_id) & (Order.placed_at == latest.c.placed_at))
    )
    return BatchFacts(
        coupons=issue_coupons(session, requests, now),
        last_orders={order.contact_id: order for order in orders},
    )


_LINKS = Link.__table__
_LINK_COLUMNS = ("store_id", "message_id", "position", "url", "kind")  # the keys of compose_message's link rows
_LINK_ROWS = recordset(_LINKS, _LINK_COLUMNS)
_INSERT_LINKS = insert(_LINKS).from_select(_LINK_COLUMNS, select(*(_LINK_ROWS.c[name] for name in _LINK_COLUMNS)))


def store_links(session: Session, facts: BatchFacts) -> None:
    """Store the batch's tracked links (a reclaimed send rewrites its own) in two statements.

    They are committed before any email goes, so every click redirect finds its URL.
    """
    links = facts.links
    if not links:
        return
    session.execute(delete(Link).where(among(session, Link.message_id, {link["message_id"] for link in links})))
    if is_postgresql(session):
        # One INSERT … SELECT for a few thousand rows, where an executemany would send one per row.
        session.execute(_INSERT_LINKS, {"rows": recordset_rows(links)})
    else:
        session.execute(insert(Link.__table__), links)  # Core executemany: no ORM bookkeeping per row
    facts.links = []


def compose_message(
    message: Message,
    *,
    store: Store,
    contact: Contact,
    campaign: Campaign,
    step: EffectiveStep,
    cart: Cart | None,
    facts: BatchFacts,
    settings: Settings,
    library: TemplateLibrary,
    now: datetime,
) -> ComposedEmail:
    """Render the email for `message` (its bytes are built when sent); its links go to `facts`
    for `store_links`.

    Safe to call again for the same row (a reclaimed send): the coupon is reused and the links are
    rewritten, so the email is the same apart from its Date.
    """
    coupon = facts.coupons.get(message.id)
    unsubscribe = unsubscribe_url(settings, message.id)
    reasons = reason_links(settings, message.id) if campaign.kind == "winback" else []
    context = build_context(
        store=store, contact=contact, unsubscribe_url=unsubscribe, cart=cart, coupon=coupon,
        last_order=facts.last_orders.get(contact.id), step=step, campaign=campaign,
        timezone=contact.timezone or store.timezone, reasons=reasons,
    )
    compiled = library.get(store.id, step.template)
    rendered = render_email(compiled, step.subject, context)
    tracked = track_links(
        rendered.html,
        message_id=message.id,
        base_url=settings.base_url,
        secret=settings.secret_key,
        # Our own signed links are not redirected through click tracking.
        skip_urls=frozenset({unsubscribe, *(r["url"] for r in reasons)}),
    )
    facts.links.extend(
        {"store_id": store.id, "message_id": message.id, "position": position, "url": url, "kind": kind}
        for position, url, kind in tracked.links
    )
    header = message_id_header(message, store)
    record = {"subject": rendered.subject, "to_email": contact.email, "message_id_header": header,
              "template_version": compiled.version}
    envelope, email = outgoing_email(
        store=store, to_email=contact.email, to_name=contact.full_name, subject=rendered.subject,
        html=tracked.html, text=rendered.text, message_id=header,
        unsubscribe=unsubscribe, outbox_id=message.id,
    )
    return ComposedEmail(message_id=message.id, envelope=envelope, email=email, date=now, record=record)
