"""The template context: plain data only, built from models or mappings, plus sample data for previews.

Templates see dicts, lists, str, int, bool, Decimal and None — never an ORM object,
whose lazy attributes would run queries (or worse) from inside a template. Every
documented key is always present; a value that is missing is None, so templates
can write `contact.first_name or "there"` and `{% if coupon %}`. The builders here
write dates out as text and amounts as Decimal; `check_context` also lets float,
date and datetime through, inert values that hand-built contexts (a JSON price, an
order's `placed_at`) carry, rather than fail a send over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from mailer.rendering.filters import CENT, format_date, to_decimal

_SCALARS = (str, int, bool, Decimal, type(None), float, date, datetime)
_STR_ONLY = {str}


def check_context(value: Any, path: str = "context") -> None:
    """Raise TypeError unless `value` is plain data all the way down (see the module docstring)."""
    if not _plain(value):
        _explain(value, path)


def _plain(value: Any) -> bool:
    # The fast check, run for every email: a walk without recursion or paths; _explain finds
    # where the problem is only when there is one.
    todo = [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        if kind in _SCALARS:  # exact types: a Markup (str subclass) would skip escaping
            continue
        if kind is dict:
            if item and set(map(type, item)) != _STR_ONLY:
                return False
            todo.extend(item.values())
        elif kind is list or kind is tuple:
            todo.extend(item)
        else:
            return False
    return True


def _explain(value: Any, path: str) -> None:
    """Raise the TypeError naming where in `value` the first non-plain item is."""
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{path} has a non-string key {key!r}")
            _explain(item, f"{path}[{key!r}]")
        return
    if kind in (list, tuple):
        for index, item in enumerate(value):
            _explain(item, f"{path}[{index}]")
        return
    raise TypeError(f"{path} is a {kind.__name__}; templates only get plain data")


def _get(source: Any, key: str, default: Any = None) -> Any:
    """`source[key]` for a mapping, `source.key` for an object (a model), else `default`."""
    if source is None:
        return default
    if isinstance(source, Mapping):
        return source.get(key, default)
    return getattr(source, key, default)


def _text(value: Any) -> str | None:
    """A stripped string, or None when there is nothing."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return to_decimal(value).quantize(CENT)


def _quantity(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 1


def _day(value: Any, timezone: str | None) -> str | None:
    """A date written out for people, in the store's time zone when one is given."""
    if isinstance(value, datetime) and value.tzinfo is not None and timezone:
        value = value.astimezone(ZoneInfo(timezone))
    if isinstance(value, date | str):
        return format_date(value) or None
    return None


def store_context(store: Any) -> dict[str, Any]:
    """`store`: name, domain, url, postal_address, currency, sender_name."""
    domain = _text(_get(store, "domain")) or ""
    name = _text(_get(store, "name")) or domain
    return {
        "name": name,
        "domain": domain,
        "url": _text(_get(store, "url")) or (f"https://{domain}" if domain else ""),
        "postal_address": _text(_get(store, "postal_address")) or "",
        "currency": (_text(_get(store, "currency")) or "USD").upper(),
        "sender_name": _text(_get(store, "sender_name")) or name,
    }


def contact_context(contact: Any) -> dict[str, Any]:
    """`contact`: first_name, last_name (None when unknown), email."""
    return {
        "first_name": _text(_get(contact, "first_name")),
        "last_name": _text(_get(contact, "last_name")),
        "email": _text(_get(contact, "email")) or "",
    }


def _cart_item(item: Any) -> dict[str, Any]:
    price = _amount(_get(item, "price")) or Decimal("0.00")
    quantity = _quantity(_get(item, "quantity", 1))
    return {
        "sku": _text(_get(item, "sku")) or "",
        "name": _text(_get(item, "name")) or "",
        "price": price,
        "quantity": quantity,
        "url": _text(_get(item, "url")),
        "image_url": _text(_get(item, "image_url")),
        "line_total": (price * quantity).quantize(CENT),
    }


def cart_context(
    cart: Any, *, currency: str | None = None, restore_url: str | None = None
) -> dict[str, Any] | None:
    """`cart`: items (with line_total), total, currency, restore_url; None without a cart.

    The total is the sum of the lines shown, so the email always adds up.
    """
    if cart is None:
        return None
    items = [_cart_item(item) for item in (_get(cart, "items") or [])]
    return {
        "items": items,
        "total": sum((item["line_total"] for item in items), Decimal("0.00")),
        "currency": (_text(_get(cart, "currency")) or currency or "USD").upper(),
        "restore_url": _text(_get(cart, "restore_url")) or restore_url,
    }


def coupon_context(coupon: Any, *, timezone: str | None = None) -> dict[str, Any] | None:
    """`coupon`: code, percent_off, expires_at (written out, e.g. "December 9, 2026"); None without one."""
    if coupon is None:
        return None
    return {
        "code": _text(_get(coupon, "code")) or "",
        "percent_off": int(_get(coupon, "percent_off") or 0),
        "expires_at": _day(_get(coupon, "expires_at"), timezone),
    }


def _order_item(item: Any) -> dict[str, Any]:
    return {
        "name": _text(_get(item, "name")) or "",
        "sku": _text(_get(item, "sku")) or "",
        "quantity": _quantity(_get(item, "quantity", 1)),
        "price": _amount(_get(item, "price")),
        "url": _text(_get(item, "url")),
    }


def last_order_context(order: Any, *, timezone: str | None = None) -> dict[str, Any] | None:
    """`last_order`: placed_at (written out), total, currency, items; None without an order."""
    if order is None:
        return None
    items: Iterable[Any] = _get(order, "items") or []
    return {
        "placed_at": _day(_get(order, "placed_at"), timezone),
        "total": _amount(_get(order, "total")),
        "currency": (_text(_get(order, "currency")) or "USD").upper(),
        "items": [_order_item(item) for item in items],
    }


def build_context(
    *,
    store: Any,
    contact: Any,
    unsubscribe_url: str,
    cart: Any = None,
    coupon: Any = None,
    last_order: Any = None,
    step: Any = None,
    campaign: Any = None,
    timezone: str | None = None,
    reasons: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The whole context for one email; each argument may be a model or a mapping.

    `timezone` (the contact's, else the store's) is where coupon and order dates are written out.
    """
    store_data = store_context(store)
    context = {
        "store": store_data,
        "contact": contact_context(contact),
        "cart": cart_context(cart, currency=store_data["currency"], restore_url=store_data["url"]),
        "coupon": coupon_context(coupon, timezone=timezone),
        "last_order": last_order_context(last_order, timezone=timezone),
        "step": {
            "index": int(_get(step, "index") or 1),
            "discount_percent": _get(step, "discount_percent"),
        },
        "campaign": {
            "key": _text(_get(campaign, "key")) or "",
            "name": _text(_get(campaign, "name")) or "",
        },
        "unsubscribe_url": unsubscribe_url,
        # Win-back emails ask why the customer left: [{key, label, url}], one link per answer.
        "reasons": list(reasons or []),
    }
    # Not checked here: render_email checks every context it is given, this one included.
    return context


# Per default template: campaign key and name, step index, discount. Previews and
# test sends of "cart/step3" then show 20 % and a cart, of "winback/*" no cart.
_SAMPLE_STEPS: dict[str, tuple[str, str, int, int]] = {
    "cart/step1": ("abandoned_cart", "Abandoned cart", 1, 10),
    "cart/step2": ("abandoned_cart", "Abandoned cart", 2, 15),
    "cart/step3": ("abandoned_cart", "Abandoned cart", 3, 20),
    "winback/tier1": ("winback", "Win-back", 1, 10),
    "winback/tier2": ("winback", "Win-back", 2, 15),
    "winback/tier3": ("winback", "Win-back", 3, 20),
    "winback/apology": ("winback", "Win-back", 1, 0),
}


def sample_context(
    store_info: dict[str, Any] | None = None, *, template: str | None = None
) -> dict[str, Any]:
    """Realistic, fixed sample data for previews, test sends and validation.

    `store_info` (name, domain, postal_address, currency, sender_name) replaces the
    sample store; `template` (e.g. "cart/step3") picks that step's discount, and
    leaves the cart out of win-back samples.
    """
    store = {
        "name": "Juniper & Co.",
        "domain": "juniper.example",
        "postal_address": "Juniper & Co., 214 Alder Street, Portland, OR 97204, USA",
        "currency": "USD",
        "sender_name": "Maya at Juniper",
    }
    store.update(
        {key: value for key, value in (store_info or {}).items() if value not in (None, "")}
    )
    url = f"https://{store['domain']}"
    key, name, index, percent = _SAMPLE_STEPS.get(
        template or "", ("abandoned_cart", "Abandoned cart", 1, 10)
    )
    cart = {
        "currency": store["currency"],
        # An "&" in a URL, as real restore links have: it must come out as &amp; in HTML only.
        "restore_url": f"{url}/cart/restore?token=7f3a9c&utm_source=email",
        "items": [
            {
                "sku": "PIL-SAGE-18",
                "name": "Linen Throw Pillow, Sage",
                "price": Decimal("38.00"),
                "quantity": 2,
                "url": f"{url}/products/linen-throw-pillow?variant=sage",
                "image_url": f"{url}/images/linen-throw-pillow-sage.jpg",
            },
            {
                "sku": "MUG-STONE",
                "name": "Hand-thrown Stoneware Mug",
                "price": Decimal("24.50"),
                "quantity": 1,
                "url": f"{url}/products/stoneware-mug",
                "image_url": f"{url}/images/stoneware-mug.jpg",
            },
        ],
    }
    last_order = {
        "placed_at": date(2026, 3, 3),
        "total": Decimal("58.00"),
        "currency": store["currency"],
        "items": [
            {
                "name": "Waxed Canvas Tote",
                "sku": "TOTE-OLIVE",
                "quantity": 1,
                "price": "58.00",
                "url": f"{url}/products/waxed-canvas-tote",
            }
        ],
    }
    return build_context(
        store=store,
        contact={"first_name": "Sam", "last_name": "Rivera", "email": "sam.rivera@example.com"},
        unsubscribe_url="https://mail.juniper.example/u/sample-unsubscribe-token",
        cart=None if key == "winback" else cart,
        coupon={"code": "JUNI-7KQ2M9XH", "percent_off": percent, "expires_at": date(2026, 12, 9)},
        last_order=last_order,
        step={"index": index, "discount_percent": percent},
        campaign={"key": key, "name": name},
        reasons=sample_reasons() if key == "winback" else [],
    )


def sample_reasons() -> list[dict[str, str]]:
    """The reason links as a win-back email carries them, pointing at a sample token."""
    from mailer.campaigns.reasons import REASONS  # the one list of answers

    return [
        {"key": key, "label": label, "url": f"https://mail.juniper.example/r/sample-{key}"}
        for key, label in REASONS.items()
    ]


def sparse_sample_context(
    store_info: dict[str, Any] | None = None, *, template: str | None = None
) -> dict[str, Any]:
    """The sample with every optional value missing: no names, no coupon, no previous order.

    Validation renders this too, so a template that only works when everything is
    there is refused when it is saved, not when a customer without a first name
    comes along.
    """
    context = sample_context(store_info, template=template)
    context["contact"]["first_name"] = None
    context["contact"]["last_name"] = None
    context["coupon"] = None
    context["last_order"] = None
    context["step"]["discount_percent"] = None
    return context
