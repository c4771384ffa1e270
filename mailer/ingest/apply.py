"""Applying validated events to contacts, carts and orders, idempotent per event id; a bad event never loses its neighbours."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Insert, bindparam, select, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from mailer.campaigns.exits import on_order
from mailer.db import (
    dialect_insert,
    insert_ignoring_conflicts,
    insert_ignoring_statement,
    recordset,
    recordset_rows,
)
from mailer.errors import ValidationError
from mailer.ingest.browsers import Owner, anonymous_id_table, merge_anonymous, owners_of_browsers
from mailer.ingest.carts import upsert_cart
from mailer.ingest.identity import contact_id_for_email, update_traits
from mailer.ingest.orders import NewOrder, record_order
from mailer.ingest.schema import (
    CartUpdated,
    CheckoutStarted,
    OrderPlaced,
    ProductViewed,
    Traits,
    ValidEvent,
    validate_event,
)
from mailer.models import Cart, Contact, Event, Order
from mailer.rendering.coupons import redeem_coupon
from mailer.reports.attribution import attribute_order

log = logging.getLogger(__name__)

# Called with every order this module records for the first time (e.g. to exit the contact's
# enrollments the order ends). Registered at start-up by the parts that care; the ingest code
# does not import them, so ingestion never depends on the campaign engine.
ORDER_HOOKS: list[Callable[[Session, Order, datetime], object]] = [on_order, attribute_order]


class IngestingStore(Protocol):
    """What applying events needs of a store: a Store row, or the snippet endpoint's cached snapshot."""

    @property
    def id(self) -> int: ...  # noqa: D102
    @property
    def domain(self) -> str: ...  # noqa: D102
    @property
    def currency(self) -> str: ...  # noqa: D102


@dataclass
class IngestResult:
    """What happened to a batch: new events, replays, and the refused ones by position."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The API's answer body."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(frozen=True)
class ValidatedBatch:
    """A request's events after validation: the valid ones in order, and the refused ones by position."""

    store: IngestingStore
    events: list[tuple[int, ValidEvent]]
    rejected: list[dict[str, Any]]
    source: str

    @property
    def only_plain_views(self) -> bool:
        """True when storing the batch is one INSERT and nothing else (see is_plain_view)."""
        return bool(self.events) and all(is_plain_view(event) for _, event in self.events)


def validate_batch(
    store: IngestingStore, raw_events: Sequence[object], *, now: datetime, public: bool, source: str | None = None,
) -> ValidatedBatch:
    """Validate every event of a batch, without the database.

    `public` is the snippet's endpoint (stricter timestamps, links on the store's domain);
    `source` names where orders came from (default: `snippet` or `api`).
    """
    link_domain = store.domain if public else None
    events: list[tuple[int, ValidEvent]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        try:
            events.append((index, validate_event(raw, now=now, public=public, link_domain=link_domain)))
        except ValidationError as exc:
            rejected.append({"index": index, "error": exc.message})
    return ValidatedBatch(store, events, rejected, source or ("snippet" if public else "api"))


def ingest_batch(
    session: Session, store: IngestingStore, raw_events: Sequence[object], *, now: datetime, public: bool,
    source: str | None = None, own_transaction: bool = False,
) -> IngestResult:
    """Validate every event, then store and apply the valid ones; one bad event never loses its neighbours.

    See validate_batch for `public` and `source`, and apply_batch for `own_transaction`.
    """
    batch = validate_batch(store, raw_events, now=now, public=public, source=source)
    return apply_batch(session, batch, now, own_transaction=own_transaction)


def apply_batch(session: Session, batch: ValidatedBatch, now: datetime, *, own_transaction: bool = False) -> IngestResult:
    """Store and apply a validated batch's events; one refused event never loses its neighbours.

    When the transaction holds nothing else (`own_transaction`, a request's), the whole batch
    is first tried at once (see _ingest_together) and only a refusal costs the careful pass:
    views of a product by a browser (no email, nothing to update but the event itself) stored
    together in one statement after the others, which have effects and are applied one by one
    in order, each in its own savepoint (a view with an email among them: apply_event tells
    whether it is its browser owner's). The result is the same as applying all in order: a
    browser's anonymous events end up with whoever it identified as.
    """
    store, source = batch.store, batch.source
    if own_transaction and batch.events:
        try:
            return _ingest_together(session, store, batch.events, now, source, IngestResult(rejected=list(batch.rejected)))
        except (ValidationError, DBAPIError):
            session.rollback()  # some event is refused: again one by one, to keep its neighbours
    result = IngestResult(rejected=list(batch.rejected))
    views = [(index, event) for index, event in batch.events if is_plain_view(event)]
    effects = [(index, event) for index, event in batch.events if not is_plain_view(event)]
    for index, event in effects:
        try:
            is_new = _apply_isolated(session, store, event, now, source)
        except ValidationError as exc:
            result.rejected.append({"index": index, "error": exc.message})
            continue
        if is_new:
            result.accepted += 1
        else:
            result.duplicates += 1
    if views:
        try:
            with session.begin_nested():
                stored = record_views(session, store, [event for _, event in views], now)
        except DBAPIError:
            log.exception("storing %d product views of store %s failed", len(views), store.id)
            result.rejected.extend({"index": index, "error": "could not be stored"} for index, _ in views)
        else:
            result.accepted += stored
            result.duplicates += len(views) - stored
    result.rejected.sort(key=lambda rejection: rejection["index"])
    return result


def _ingest_together(
    session: Session, store: IngestingStore, events: list[tuple[int, ValidEvent]], now: datetime, source: str,
    result: IngestResult,
) -> IngestResult:
    # The happy path of a request's batch: every row claimed by one INSERT, then the effects in
    # order with no savepoints. Anything refused raises, and the caller rolls back and replays.
    if len(events) == 1:  # the snippet's commonest request: apply_event claims it in one statement
        if apply_event(session, store, events[0][1], now, source=source):
            result.accepted += 1
        else:
            result.duplicates += 1
        return result
    browsers = {event.anonymous_id for _, event in events if event.anonymous_id is not None}
    owners = owners_of_browsers(session, store.id, browsers)
    # Each row is claimed with the contact its browser's owner before the batch gives it, even
    # after an identify: one that names the same person (the commonest) then leaves it right,
    # and _BatchRows tells which rows end with someone else.
    rows = [event_row(store.id, event, now, _born_with(event, owners)) for _, event in events]
    claimed = claim_event_ids(session, rows)
    batch_rows = _BatchRows(rows, claimed)
    for _, event in events:
        if event.event_id not in claimed:
            result.duplicates += 1
            continue
        claimed.discard(event.event_id)  # a second copy in the same batch is a duplicate
        result.accepted += 1
        browser = event.anonymous_id
        # One by one, this row is born with its browser's owner as the batch has left it so far,
        # or (an email naming someone else, or no owner yet) given its email's by apply_effects.
        known = _born_with(event, owners)
        if known is not None:
            batch_rows.due(event.event_id, known)
        if is_plain_view(event, known):
            continue
        contact_id, merged = apply_effects(session, store, event, now, known, row_settled=True, source=source)
        # What an effect changed through the ORM (consent, a checkout, a new cart, an order's
        # contact) is written now, as one by one: the next events' Core statements neither see
        # it pending, nor keep it (expire_loaded after a Core write drops unflushed changes).
        session.flush()
        if event.email is not None:
            assert contact_id is not None  # an email always names a contact
            if browser and merged:
                batch_rows.merged(browser, contact_id)
            batch_rows.due(event.event_id, contact_id)
            if browser:  # the browser follows whoever identified last, and its email named them
                owners[browser] = Owner(contact_id, event.email)
    for owner, event_ids in batch_rows.unsettled().items():
        session.connection().execute(_GIVE_CONTACT, {"in_store": store.id, "these_events": event_ids, "new_contact_id": owner})
    session.flush()
    result.rejected.sort(key=lambda rejection: rejection["index"])
    return result


class _BatchRows:
    """The contact each row a batch claimed holds as its effects run, against the one it would hold applied one by one.

    Claiming every row before applying any effect differs from one by one in one way: a merge
    (an identify moving its browser's contact-less events to the contact, see merge_anonymous)
    also reaches the batch's later rows, which one by one did not exist yet, and a row claimed
    with its browser's former contact misses it. Following what each statement does to the
    batch's rows tells which ones end with another contact than one by one gives them; only
    those are written again, usually none. A row due no contact is left as one by one leaves it.
    """

    def __init__(self, rows: list[dict[str, Any]], claimed: set[str]) -> None:
        self._browser: dict[str, str | None] = {}
        self._holds: dict[str, int | None] = {}
        self._due: dict[str, int] = {}
        for row in rows:  # the first copy of an id is the one that went in
            if row["event_id"] in claimed and row["event_id"] not in self._holds:
                self._browser[row["event_id"]] = row["anonymous_id"]
                self._holds[row["event_id"]] = row["contact_id"]

    def merged(self, browser: str, contact_id: int) -> None:
        """The browser's rows without a contact were given this one (what merge_anonymous's UPDATE does)."""
        for event_id, of_browser in self._browser.items():
            if of_browser == browser and self._holds[event_id] is None:
                self._holds[event_id] = contact_id

    def due(self, event_id: str, contact_id: int) -> None:
        """One by one, the row would hold this contact from now on (nothing but a merge writes a row that has one)."""
        self._due[event_id] = contact_id

    def unsettled(self) -> dict[int, list[str]]:
        """contact id → the batch's rows due that contact that hold another."""
        unsettled: dict[int, list[str]] = {}
        for event_id, contact_id in self._due.items():
            if self._holds[event_id] != contact_id:
                unsettled.setdefault(contact_id, []).append(event_id)
        return unsettled


@functools.cache
def _claim_with_browser_contact(dialect_name: str, with_email: bool) -> Insert:
    # INSERT … SELECT of bound values and the contact claimed_contact gives the row, looked up
    # inside the INSERT (with an email: only an owner with that email); the WHERE keeps SQLite's
    # parser from reading ON CONFLICT as a join constraint.
    columns = ["store_id", "event_id", "type", "name", "anonymous_id", "properties", "occurred_at", "received_at"]
    owner = select(anonymous_id_table.c.contact_id).where(
        anonymous_id_table.c.store_id == bindparam("store_id"), anonymous_id_table.c.anonymous_id == bindparam("anonymous_id"),
    )
    if with_email:
        owner = owner.join_from(anonymous_id_table, _contacts, _contacts.c.id == anonymous_id_table.c.contact_id).where(
            _contacts.c.email == bindparam("email", type_=_contacts.c.email.type),
        )
    values = select(*(bindparam(name, type_=_events.c[name].type) for name in columns), owner.scalar_subquery()).where(true())
    return (
        dialect_insert(dialect_name, _events).from_select([*columns, "contact_id"], values)
        .on_conflict_do_nothing().returning(_events.c.contact_id)
    )


def event_row(store_id: int, event: ValidEvent, now: datetime, contact_id: int | None) -> dict[str, Any]:
    """The `events` row of a validated event."""
    return {
        "store_id": store_id, "event_id": event.event_id, "type": event.type, "name": event.name,
        "anonymous_id": event.anonymous_id, "properties": event.stored_properties(),
        "occurred_at": event.occurred_at, "received_at": now, "contact_id": contact_id,
    }


def claim_event_ids(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose event ids are new (one statement); returns those ids."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":  # INSERT … SELECT from the rows as JSON: see db.recordset
        return set(connection.execute(_CLAIM_ROWS, {"rows": recordset_rows(rows)}).scalars())
    statement = insert_ignoring_statement(connection.dialect.name, _events, "event_id")
    return set(connection.execute(statement, rows).scalars())


def claimed_contact(event: ValidEvent, owner: Owner | None) -> int | None:
    """The contact an event's row is born with when its browser belongs to `owner`: theirs, unless its email names someone else.

    An event whose email is its browser owner's (the snippet sends the email it knows with every
    event once a visitor identified) is then born with the contact that email names, and
    identifying it would change nothing: the contact exists, and the browser is theirs already.
    """
    if owner is None or (event.email is not None and event.email != owner.email):
        return None
    return owner.contact_id


def _born_with(event: ValidEvent, owners: dict[str, Owner]) -> int | None:
    # claimed_contact for an event whose browser's owner, if it has one, is in `owners`.
    return claimed_contact(event, owners.get(event.anonymous_id) if event.anonymous_id else None)


def is_plain_view(event: ValidEvent, born_with: int | None = None) -> bool:
    """True for an event whose only effect is its own row: a product view without an email, or born with its email's contact.

    `born_with` is the contact claimed_contact gives its row (None when unknown).
    """
    return isinstance(event.payload, ProductViewed) and (event.email is None or born_with is not None)


def record_views(session: Session, store: IngestingStore, events: Sequence[ValidEvent], now: datetime) -> int:
    """Store plain views in one INSERT, each given its browser's contact; returns how many were new."""
    if not events:
        return 0
    browsers = {event.anonymous_id for event in events if event.anonymous_id is not None}
    owners = owners_of_browsers(session, store.id, browsers)
    rows = [event_row(store.id, event, now, _born_with(event, owners)) for event in events]
    return insert_ignoring_conflicts(session, Event, rows)


# Built once, with bound parameters: building a statement costs more Python than running it.
_events, _contacts = Event.__table__, Contact.__table__
_EVENT_COLUMNS = ("store_id", "event_id", "type", "name", "anonymous_id", "properties", "occurred_at", "received_at", "contact_id")
# PostgreSQL: a batch's rows claimed by one statement whose text stays the same whatever its size
# (the multi-row VALUES form of 200 rows was 58 kB the driver parsed again for every batch).
_CLAIM_ROWS = (
    postgresql.insert(_events)
    .from_select(_EVENT_COLUMNS, select(*(column for column in recordset(_events, _EVENT_COLUMNS).c)))
    .on_conflict_do_nothing()
    .returning(_events.c.event_id)
)
_GIVE_CONTACT = (  # to rows this transaction claimed, whatever they hold (see _BatchRows)
    update(_events)
    .where(_events.c.store_id == bindparam("in_store"), _events.c.event_id.in_(bindparam("these_events", expanding=True)))
    .values(contact_id=bindparam("new_contact_id"))
)
_EVENT_CONTACT = (
    update(_events)
    .where(_events.c.store_id == bindparam("in_store"), _events.c.event_id == bindparam("this_event"))
    .values(contact_id=bindparam("new_contact_id"))
)


def _apply_isolated(session: Session, store: IngestingStore, event: ValidEvent, now: datetime, source: str) -> bool:
    # A unique-key race (two requests creating the same contact at once) is retried once: the
    # second try sees the other request's row.
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return apply_event(session, store, event, now, source=source)
        except IntegrityError:
            if attempt == 2:
                raise ValidationError("conflicted with a concurrent update; send it again") from None
        except DBAPIError:
            log.exception("storing event %r of store %s failed", event.event_id, store.id)
            raise ValidationError("could not be stored") from None
    raise AssertionError("unreachable")


def apply_event(session: Session, store: IngestingStore, event: ValidEvent, now: datetime, *, source: str = "api") -> bool:
    """Apply one validated event; returns False (and changes nothing) when its id was seen before."""
    # One statement claims the row and gives it the contact it is born with (claimed_contact,
    # looked up inside the INSERT): without an email, or with its browser owner's, nothing more
    # about who it is needs doing. Another email may create a contact, which must wait until the
    # id proved new.
    if event.anonymous_id is None:
        if not _claim_event_id(session, store, event, now, None):
            return False
        contact_id = None
    else:
        connection = session.connection()
        row = event_row(store.id, event, now, None)
        del row["contact_id"]
        if event.email is not None:
            row["email"] = event.email
        statement = _claim_with_browser_contact(connection.dialect.name, event.email is not None)
        claimed = connection.execute(statement, row).first()
        if claimed is None:
            return False
        contact_id = claimed.contact_id
    if not is_plain_view(event, contact_id):
        apply_effects(session, store, event, now, contact_id, row_settled=contact_id is not None, source=source)
        session.flush()
    return True


class Effects(NamedTuple):
    """What applying an event did to identities: its contact, and whether it merged its browser's contact-less rows into it."""

    contact_id: int | None
    merged: bool


def apply_effects(
    session: Session, store: IngestingStore, event: ValidEvent, now: datetime, contact_id: int | None, *,
    row_settled: bool, source: str = "api",
) -> Effects:
    """Apply a claimed event's effects, and give its row its contact unless `row_settled`.

    `contact_id` is the contact its row is born with when known (see claimed_contact): its
    browser's, or with an email the one the email names, whose browser it is already; an email
    with no contact known is identified here.
    """
    owner_known = row_settled
    payload = event.payload
    names_set = merged = False
    if event.email is not None and contact_id is None:
        contact_id, merged, names_set = _identify(session, store, event, now)
        owner_known = owner_known or merged
    if isinstance(payload, Traits):
        needs_update = not names_set or payload.consent is not None
        if contact_id is not None and needs_update:
            update_traits(session, contact_id, payload, now)
    elif isinstance(payload, CartUpdated):
        upsert_cart(session, store.id, store.currency, payload, event.occurred_at,
                    contact_id=contact_id, anonymous_id=event.anonymous_id, now=now)
    elif isinstance(payload, CheckoutStarted):
        apply_checkout_started(session, store, payload, event, contact_id, now)
    elif isinstance(payload, OrderPlaced):
        contact = session.get(Contact, contact_id) if contact_id is not None else None
        if contact is None:
            raise ValidationError("order_placed needs an email (or an anonymous_id identified before)")
        apply_order(session, store, payload, event.occurred_at, contact, now, source=source)
    if contact_id is not None and not owner_known:
        session.connection().execute(_EVENT_CONTACT, {"in_store": store.id, "this_event": event.event_id, "new_contact_id": contact_id})
    return Effects(contact_id, merged)


def _claim_event_id(
    session: Session, store: IngestingStore, event: ValidEvent, now: datetime, contact_id: int | None
) -> bool:
    """Insert the Event row unless its id exists; True when this call inserted it.

    Claiming the id first makes the unique key the judge of replays, even between racing
    requests.
    """
    return insert_ignoring_conflicts(session, Event, [event_row(store.id, event, now, contact_id)]) == 1


# --- identity ---------------------------------------------------------------------------------


def _identify(session: Session, store: IngestingStore, event: ValidEvent, now: datetime) -> tuple[int, bool, bool]:
    # An email identifies the contact (created when new, with an identify's names) and merges the
    # browser's anonymous history. Returns the contact's id, whether the merge already gave it
    # this event, and whether the names were set by the creation.
    assert event.email is not None
    names = {}
    if isinstance(event.payload, Traits):
        names = {name: value for name in ("first_name", "last_name", "timezone") if (value := getattr(event.payload, name))}
    contact_id, created = contact_id_for_email(session, store.id, event.email, now, **names)
    moved = event.anonymous_id is not None and merge_anonymous(session, store.id, event.anonymous_id, contact_id, now)
    return contact_id, moved, created


# --- carts ------------------------------------------------------------------------------------


def find_cart(session: Session, store_id: int, external_id: str) -> Cart | None:
    """The store's cart with this (store-given) cart id."""
    return session.scalar(select(Cart).where(Cart.store_id == store_id, Cart.external_id == external_id))


def _new_cart(session: Session, store: IngestingStore, external_id: str, event: ValidEvent, contact_id: int | None, now: datetime) -> Cart:
    cart = Cart(
        store_id=store.id, external_id=external_id, contact_id=contact_id,
        anonymous_id=event.anonymous_id, currency=store.currency, status="open",
        last_activity_at=event.occurred_at, created_at=now, items=[],
    )
    session.add(cart)
    return cart


def _claim(cart: Cart, event: ValidEvent, contact_id: int | None) -> None:
    # A cart started anonymously belongs to whoever the later events name.
    if cart.contact_id is None and contact_id is not None:
        cart.contact_id = contact_id
    if cart.anonymous_id is None and event.anonymous_id is not None:
        cart.anonymous_id = event.anonymous_id


def apply_checkout_started(
    session: Session, store: IngestingStore, data: CheckoutStarted, event: ValidEvent, contact_id: int | None, now: datetime
) -> Cart:
    """Mark the cart's checkout (creating the cart when it was never reported) and its activity."""
    cart = find_cart(session, store.id, data.cart_id)
    if cart is None:
        cart = _new_cart(session, store, data.cart_id, event, contact_id, now)
    else:
        _claim(cart, event, contact_id)
    if cart.checkout_started_at is None or event.occurred_at > cart.checkout_started_at:
        cart.checkout_started_at = event.occurred_at
    if event.occurred_at > cart.last_activity_at:
        cart.last_activity_at = event.occurred_at
    return cart


# --- orders -----------------------------------------------------------------------------------


def apply_order(
    session: Session, store: IngestingStore, data: OrderPlaced, placed_at: datetime, contact: Contact, now: datetime,
    *, source: str = "api",
) -> Order | None:
    """Record the order (once per order id), convert its cart, redeem its coupon, run ORDER_HOOKS."""
    cart = find_cart(session, store.id, data.cart_id) if data.cart_id else None
    order = record_order(
        session,
        contact,
        NewOrder(
            external_id=data.order_id, placed_at=placed_at, total=data.total, currency=data.currency,
            cart_id=cart.id if cart is not None else None, coupon_code=data.coupon,
            items=tuple(item.as_json() for item in data.items), source=source,
        ),
        now,
    )
    if order is None:
        return None  # the store sent this order before
    if cart is not None:
        if cart.contact_id is None:
            cart.contact_id = contact.id
        cart.status = "converted"
        cart.converted_order_id = order.id
    if data.coupon:
        status = redeem_coupon(session, store.id, data.coupon, order.id, placed_at)
        if status != "valid":
            order.coupon_rejected = status  # a second use, expired or foreign code: kept, flagged
    session.flush()
    for hook in ORDER_HOOKS:
        hook(session, order, now)
    return order
