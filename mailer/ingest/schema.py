"""Validating one tracked event against the public contract (DESIGN §4): pure, strict and typed.

Nothing a visitor sends is stored as sent: each event is rebuilt here from checked fields, so
the database only ever sees bounded, well-formed values (no NUL bytes, no lone surrogates, no
floats for money, no `javascript:` links).

Decisions:
- A URL that is not `http(s)://host…` refuses the whole event (it is never dropped silently,
  so the store's developer sees the mistake in the answer). On the public API, links a shopper
  will click (`url`, `restore_url`) must also be on the store's domain or a subdomain of it,
  so a forged cart cannot make the store email a link to someone else's site.
- Names are trimmed to 200 characters (control characters become spaces); ids longer than 128
  characters are refused, since a cut id would silently merge two things.
- Ids (`order_id`, `cart_id`, `sku`) may be strings or whole numbers; the event `id` must be a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.clock import parse_instant
from mailer.errors import ValidationError
from mailer.ingest.identity import normalize_email

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 200
MAX_URL_LENGTH = 2048
MAX_CODE_LENGTH = 64
MAX_ITEMS = 200
MAX_QUANTITY = 10_000
# Money columns are Numeric(14, 2).
MAX_AMOUNT = Decimal("999999999999.99")
CENT = Decimal("0.01")
# The public API only takes events that happen now (a browser's clock may be off by a day);
# the server API takes history, but nothing from the future beyond clock drift.
PUBLIC_MAX_SKEW = timedelta(hours=24)
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

TRACK_NAMES = ("product_viewed", "cart_updated", "checkout_started", "order_placed")
CONSENT_VALUES = ("granted", "denied")

_EVENT_KEYS = frozenset({"id", "type", "event", "anonymous_id", "email", "traits", "properties", "timestamp"})
_TRAIT_KEYS = frozenset({"email", "first_name", "last_name", "timezone", "consent", "consent_source", "consent_at"})
_ITEM_KEYS = frozenset({"sku", "name", "price", "quantity", "url", "image_url"})
_PRODUCT_KEYS = frozenset({"sku", "product_id", "name", "price", "currency", "url", "image_url", "category"})
_CART_KEYS = frozenset({"cart_id", "currency", "value", "restore_url", "items"})
_CHECKOUT_KEYS = frozenset({"cart_id"})
_ORDER_KEYS = frozenset({"order_id", "total", "currency", "cart_id", "coupon", "items"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x1f\x7f-\x9f\s]")  # \s: what str.isspace() calls a space, Unicode's too
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_AMOUNT_TEXT = re.compile(r"\d{1,20}(?:\.\d{1,20})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class Item:
    """One line of a cart or an order."""

    sku: str
    name: str
    price: Decimal
    quantity: int
    url: str | None = None
    image_url: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The item as JSON-safe data (money as a string)."""
        return {
            "sku": self.sku, "name": self.name, "price": str(self.price), "quantity": self.quantity,
            "url": self.url, "image_url": self.image_url,
        }


@dataclass(frozen=True)
class Traits:
    """What an identify call says about the person."""

    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    consent: str | None = None
    consent_source: str | None = None
    consent_at: datetime | None = None


@dataclass(frozen=True)
class ProductViewed:
    """A product page was seen (kept for personalization)."""

    sku: str | None = None
    product_id: str | None = None
    name: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    url: str | None = None
    image_url: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class CartUpdated:
    """The cart as it is now: its items replace whatever was there."""

    cart_id: str
    items: tuple[Item, ...]
    value: Decimal
    currency: str | None = None
    restore_url: str | None = None


@dataclass(frozen=True)
class CheckoutStarted:
    """The shopper reached the checkout."""

    cart_id: str


@dataclass(frozen=True)
class OrderPlaced:
    """An order, idempotent by `order_id`."""

    order_id: str
    total: Decimal
    currency: str
    cart_id: str | None = None
    coupon: str | None = None
    items: tuple[Item, ...] = ()


Payload = Traits | ProductViewed | CartUpdated | CheckoutStarted | OrderPlaced


@dataclass(frozen=True)
class ValidEvent:
    """One checked event, ready to apply."""

    event_id: str
    type: Literal["identify", "track"]
    name: str | None
    anonymous_id: str | None
    email: str | None
    occurred_at: datetime
    payload: Payload

    def stored_properties(self) -> dict[str, Any]:
        """The checked traits or properties as JSON-safe data for the Event row."""
        return {key: _jsonable(value) for key, value in vars(self.payload).items() if value not in (None, (), "")}


def _jsonable(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Item):
        return value.as_json()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


# --- field checks -----------------------------------------------------------------------------


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}")


def _object(value: object, path: str, allowed: frozenset[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{path}: must be an object" if path else "event must be an object")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        where = f"{path}: " if path else ""
        raise ValidationError(f"{where}unknown key {unknown[0][:40]!r} (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if value.get(key) is None:
            raise _fail(_at(path, key), "is required")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "must be a string")
    if _SURROGATE.search(value):
        raise _fail(path, "is not valid Unicode text")
    return value


def _identifier(value: object, path: str, *, numbers: bool = True, required: bool = False) -> str | None:
    """An id: a non-empty string (or a whole number) of at most 128 printable characters."""
    if value is None:
        if required:
            raise _fail(path, "is required")
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _string(value, path).strip()
    if not text:
        raise _fail(path, "must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise _fail(path, f"must be at most {MAX_ID_LENGTH} characters")
    if _CONTROL.search(text):
        raise _fail(path, "must not contain control characters")
    return text


def _name(value: object, path: str) -> str | None:
    """Free text shown to people: control characters become spaces, then trimmed to 200 characters."""
    if value is None:
        return None
    text = _CONTROL.sub(" ", _string(value, path)).strip()
    return text[:MAX_NAME_LENGTH].rstrip() or None


def host_in_domain(host: str, domain: str) -> bool:
    """True when `host` is the store's domain or one of its subdomains."""
    host = host.lower().rstrip(".")
    domain = domain.lower().rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _url(value: object, path: str, link_domain: str | None = None) -> str | None:
    """An absolute http(s) URL; with `link_domain`, on that domain or a subdomain of it."""
    if value is None:
        return None
    text = _string(value, path).strip()
    if not text:
        return None
    if len(text) > MAX_URL_LENGTH:
        raise _fail(path, f"must be at most {MAX_URL_LENGTH} characters")
    if _CONTROL_OR_SPACE.search(text):
        raise _fail(path, "must be an http(s) URL without spaces")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host:
        raise _fail(path, "must be an http(s) URL")
    if link_domain and not host_in_domain(host, link_domain):
        raise _fail(path, f"must be on the store's domain ({link_domain})")
    return text


def _amount(value: object, path: str, *, required: bool = False) -> Decimal | None:
    """Money: a non-negative decimal given as a number or a string, kept to the cent."""
    if value is None:
        if required:
            raise _fail(path, "is required")
        return None
    message = "must be a non-negative number"
    amount: Decimal
    if isinstance(value, bool):
        raise _fail(path, message)
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value)) if value == value and abs(value) != float("inf") else Decimal("NaN")
    elif isinstance(value, str):
        text = value.strip()
        if not _AMOUNT_TEXT.fullmatch(text):
            raise _fail(path, message)
        amount = Decimal(text)
    else:
        raise _fail(path, message)
    if not amount.is_finite() or amount < 0:
        raise _fail(path, message)
    if amount > MAX_AMOUNT:
        raise _fail(path, "is too large")
    try:
        amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise _fail(path, message) from exc
    return amount if amount else Decimal("0.00")  # no negative zero


def _quantity(value: object, path: str) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, "must be a whole number")
    if not 1 <= value <= MAX_QUANTITY:
        raise _fail(path, f"must be between 1 and {MAX_QUANTITY}")
    return value


def _currency(value: object, path: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise _fail(path, "is required")
        return None
    text = _string(value, path).strip().upper()
    if not _CURRENCY.fullmatch(text):
        raise _fail(path, "must be a 3-letter currency code like USD")
    return text


def _instant(value: object, path: str) -> datetime:
    text = _string(value, path)
    if len(text) > 64:
        raise _fail(path, "must be an ISO 8601 time")
    try:
        when = parse_instant(text)
    except (ValueError, OverflowError) as exc:
        raise _fail(path, "must be an ISO 8601 time like 2026-01-31T10:00:00Z") from exc
    if when < EARLIEST:
        raise _fail(path, "is before 1970")
    return when


def _email(value: object, path: str) -> str | None:
    if value is None:
        return None
    text = _string(value, path)
    if _CONTROL.search(text):
        raise _fail(path, "is not an email address")
    try:
        return normalize_email(text)
    except ValidationError as exc:
        raise _fail(path, exc.message) from exc


def _items(value: object, path: str, link_domain: str | None) -> tuple[Item, ...]:
    if not isinstance(value, list):
        raise _fail(path, "must be a list")
    if len(value) > MAX_ITEMS:
        raise _fail(path, f"must have at most {MAX_ITEMS} items")
    items = []
    for index, raw in enumerate(value):
        where = f"{path}[{index}]"
        data = _object(raw, where, _ITEM_KEYS, required=("price",))
        items.append(
            Item(
                sku=_identifier(data.get("sku"), _at(where, "sku")) or "",
                name=_name(data.get("name"), _at(where, "name")) or "",
                price=_amount(data.get("price"), _at(where, "price"), required=True) or Decimal("0.00"),
                quantity=_quantity(data.get("quantity"), _at(where, "quantity")),
                url=_url(data.get("url"), _at(where, "url"), link_domain),
                image_url=_url(data.get("image_url"), _at(where, "image_url")),
            )
        )
    return tuple(items)


# --- per event type ---------------------------------------------------------------------------


def _traits(value: object, occurred_at: datetime, public: bool) -> tuple[Traits, str | None]:
    data = _object(value, "traits", _TRAIT_KEYS)
    timezone = _name(data.get("timezone"), "traits.timezone")
    if timezone is not None:
        try:
            if len(timezone) > 64:
                raise ValueError(timezone)
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise _fail("traits.timezone", "must be an IANA time zone like Europe/Berlin") from exc
    consent = data.get("consent")
    if consent is not None and consent not in CONSENT_VALUES:
        raise _fail("traits.consent", "must be \"granted\" or \"denied\"")
    source = _name(data.get("consent_source"), "traits.consent_source")
    consent_at = _instant(data["consent_at"], "traits.consent_at") if data.get("consent_at") is not None else None
    traits = Traits(
        first_name=_name(data.get("first_name"), "traits.first_name"),
        last_name=_name(data.get("last_name"), "traits.last_name"),
        timezone=timezone,
        consent=consent,
        consent_source=((source or ("snippet" if public else "api"))[:64]) if consent else None,
        consent_at=(consent_at or occurred_at) if consent else None,
    )
    return traits, _email(data.get("email"), "traits.email")


def _product_viewed(data: dict[str, Any], link_domain: str | None) -> ProductViewed:
    data = _object(data, "properties", _PRODUCT_KEYS)
    return ProductViewed(
        sku=_identifier(data.get("sku"), "properties.sku"),
        product_id=_identifier(data.get("product_id"), "properties.product_id"),
        name=_name(data.get("name"), "properties.name"),
        price=_amount(data.get("price"), "properties.price"),
        currency=_currency(data.get("currency"), "properties.currency"),
        url=_url(data.get("url"), "properties.url", link_domain),
        image_url=_url(data.get("image_url"), "properties.image_url"),
        category=_name(data.get("category"), "properties.category"),
    )


def _cart_updated(data: dict[str, Any], link_domain: str | None) -> CartUpdated:
    data = _object(data, "properties", _CART_KEYS, required=("cart_id", "items"))
    items = _items(data["items"], "properties.items", link_domain)
    value = _amount(data.get("value"), "properties.value")
    if value is None:
        value = sum((item.price * item.quantity for item in items), Decimal("0.00"))
        if value > MAX_AMOUNT:
            raise _fail("properties.items", "add up to more than a cart can hold")
    return CartUpdated(
        cart_id=_identifier(data["cart_id"], "properties.cart_id", required=True) or "",
        items=items,
        value=value,
        currency=_currency(data.get("currency"), "properties.currency"),
        restore_url=_url(data.get("restore_url"), "properties.restore_url", link_domain),
    )


def _checkout_started(data: dict[str, Any]) -> CheckoutStarted:
    data = _object(data, "properties", _CHECKOUT_KEYS, required=("cart_id",))
    return CheckoutStarted(cart_id=_identifier(data["cart_id"], "properties.cart_id", required=True) or "")


def _order_placed(data: dict[str, Any], link_domain: str | None) -> OrderPlaced:
    data = _object(data, "properties", _ORDER_KEYS, required=("order_id", "total", "currency"))
    coupon = None
    if data.get("coupon") is not None:
        coupon = _string(data["coupon"], "properties.coupon").strip() or None
        if coupon is not None and (len(coupon) > MAX_CODE_LENGTH or _CONTROL.search(coupon)):
            raise _fail("properties.coupon", f"must be a code of at most {MAX_CODE_LENGTH} characters")
    items = data.get("items")
    return OrderPlaced(
        order_id=_identifier(data["order_id"], "properties.order_id", required=True) or "",
        total=_amount(data["total"], "properties.total", required=True) or Decimal("0.00"),
        currency=_currency(data["currency"], "properties.currency", required=True) or "",
        cart_id=_identifier(data.get("cart_id"), "properties.cart_id"),
        coupon=coupon,
        items=_items(items, "properties.items", link_domain) if items is not None else (),
    )


def validate_event(raw: object, *, now: datetime, public: bool, link_domain: str | None = None) -> ValidEvent:
    """Check one raw event; return it typed or raise ValidationError naming the field and the rule.

    `public` applies the snippet's rules (timestamps within a day of `now`); `link_domain`, when
    given, is the domain the clickable URLs must belong to.
    """
    data = _object(raw, "", _EVENT_KEYS, required=("id", "type"))
    event_id = _identifier(data["id"], "id", numbers=False, required=True) or ""
    kind = data["type"]
    if kind not in ("identify", "track"):
        raise _fail("type", "must be \"identify\" or \"track\"")

    occurred_at = now
    if data.get("timestamp") is not None:
        occurred_at = _instant(data["timestamp"], "timestamp")
        if public and abs(occurred_at - now) > PUBLIC_MAX_SKEW:
            raise _fail("timestamp", "is more than 24 hours from the present (send history through the server API)")
        if occurred_at > now + FUTURE_TOLERANCE:
            raise _fail("timestamp", "is in the future")

    anonymous_id = _identifier(data.get("anonymous_id"), "anonymous_id", numbers=False)
    email = _email(data.get("email"), "email")

    name: str | None = None
    payload: Payload
    if kind == "identify":
        if data.get("event") is not None:
            raise _fail("event", "is only for track events")
        if data.get("properties") is not None:
            raise _fail("properties", "is only for track events (identify takes traits)")
        traits = data.get("traits")
        payload, trait_email = _traits({} if traits is None else traits, occurred_at, public)
        if trait_email is not None:
            if email is not None and email != trait_email:
                raise _fail("traits.email", "differs from email")
            email = trait_email
    else:
        if data.get("traits") is not None:
            raise _fail("traits", "is only for identify events (track takes properties)")
        name = data.get("event")
        if name not in TRACK_NAMES:
            raise _fail("event", f"must be one of {', '.join(TRACK_NAMES)}")
        properties = data.get("properties")
        properties = {} if properties is None else properties
        if name == "product_viewed":
            payload = _product_viewed(properties, link_domain)
        elif name == "cart_updated":
            payload = _cart_updated(properties, link_domain)
        elif name == "checkout_started":
            payload = _checkout_started(properties)
        else:
            payload = _order_placed(properties, link_domain)

    if anonymous_id is None and email is None:
        raise ValidationError("an event needs an anonymous_id or an email")
    return ValidEvent(
        event_id=event_id, type=kind, name=name, anonymous_id=anonymous_id, email=email,
        occurred_at=occurred_at, payload=payload,
    )
