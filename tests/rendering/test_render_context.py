"""The template context (plain data from models or mappings) and the money/date filters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from mailer.rendering import build_context, sample_context
from mailer.rendering.context import check_context
from mailer.rendering.environment import HTML_ENV, TEXT_ENV
from mailer.rendering.filters import format_date, money


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("12.5"), "USD", "$12.50"),
        (Decimal("1234567.891"), "usd", "$1,234,567.89"),
        (Decimal("12.5"), "EUR", "12,50 €"),
        (Decimal("1234.5"), "EUR", "1.234,50 €"),
        (Decimal("9.99"), "GBP", "£9.99"),
        (Decimal("12.5"), "CHF", "12.50 CHF"),
        (Decimal("12.5"), None, "12.50"),
        (Decimal("-5"), "USD", "-$5.00"),
        (Decimal("0.005"), "USD", "$0.01"),  # half up, as on a receipt
        (Decimal("2.675"), "USD", "$2.68"),  # a float would give 2.67
        (0.1 + 0.2, "USD", "$0.30"),
        (7, "USD", "$7.00"),
        ("19.90", "USD", "$19.90"),
        (None, "USD", ""),
    ],
)
def test_money(value, currency, expected) -> None:
    assert money(value, currency) == expected


@given(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, places=2))
def test_money_in_dollars_reads_back_as_the_same_amount(value: Decimal) -> None:
    text = money(value, "USD")
    assert Decimal(text.replace("$", "").replace(",", "")) == value


@given(st.decimals(min_value=Decimal("0"), max_value=Decimal("1e9"), allow_nan=False, places=2))
def test_money_in_euros_reads_back_as_the_same_amount(value: Decimal) -> None:
    text = money(value, "EUR")
    assert text.endswith(" €")
    assert Decimal(text[:-2].replace(".", "").replace(",", ".")) == value


@pytest.mark.parametrize(
    ("value", "style", "expected"),
    [
        (date(2026, 12, 9), "long", "December 9, 2026"),
        (datetime(2026, 12, 9, 23, 0, tzinfo=UTC), "short", "Dec 9, 2026"),
        ("2026-12-09", "long", "December 9, 2026"),
        ("2026-12-09T10:00:00Z", "iso", "2026-12-09"),
        ("December 9, 2026", "short", "Dec 9, 2026"),
        ("next Tuesday", "long", "next Tuesday"),
        (None, "long", ""),
    ],
)
def test_date(value, style, expected) -> None:
    assert format_date(value, style) == expected


def test_filters_in_templates() -> None:
    template = HTML_ENV.from_string("{{ 12.5|money('EUR') }} · {{ '2026-03-03'|date('short') }}")
    assert template.render() == "12,50 € · Mar 3, 2026"


def test_dict_keys_win_over_dict_methods() -> None:
    """`cart.items` is the cart's items, not dict.items, in both environments."""
    context = {"cart": {"items": [{"name": "Mug"}], "values": 3}}
    assert (
        TEXT_ENV.from_string(
            "{% for i in cart.items %}{{ i.name }}{% endfor %} {{ cart.values }}"
        ).render(context)
        == "Mug 3"
    )
    assert HTML_ENV.from_string("{{ cart.get('items')|length }}").render(context) == "1"


def test_none_prints_nothing() -> None:
    assert (
        HTML_ENV.from_string("[{{ contact.first_name }}]").render(contact={"first_name": None})
        == "[]"
    )


def test_build_context_turns_models_into_plain_data() -> None:
    store = SimpleNamespace(
        name="Fern",
        domain="fern.example",
        postal_address="1 Main St",
        currency="eur",
        sender_name="",
    )
    contact = SimpleNamespace(first_name="  ", last_name="Doe", email="d@example.com")
    items = [
        SimpleNamespace(
            sku="A", name="Lamp", price=Decimal("19.99"), quantity=2, url=None, image_url=None
        ),
        SimpleNamespace(
            sku="B",
            name="Bulb",
            price=Decimal("3.50"),
            quantity=1,
            url="https://fern.example/b",
            image_url="",
        ),
    ]
    cart = SimpleNamespace(items=items, currency="EUR", restore_url=None)
    coupon = SimpleNamespace(
        code="FERN-ABCD2345", percent_off=15, expires_at=datetime(2026, 12, 9, 23, 30, tzinfo=UTC)
    )
    order = SimpleNamespace(
        placed_at=datetime(2026, 3, 3, 12, tzinfo=UTC),
        total=Decimal("40"),
        currency="EUR",
        items=[{"name": "Vase", "price": 40.0, "quantity": "1"}],
    )
    context = build_context(
        store=store,
        contact=contact,
        unsubscribe_url="https://m.example/u/t",
        cart=cart,
        coupon=coupon,
        last_order=order,
        step={"index": 2, "discount_percent": 15},
        campaign={"key": "abandoned_cart", "name": "Carts"},
        timezone="Europe/Berlin",
    )
    check_context(context)
    assert context["store"] == {
        "name": "Fern",
        "domain": "fern.example",
        "url": "https://fern.example",
        "postal_address": "1 Main St",
        "currency": "EUR",
        "sender_name": "Fern",
    }
    assert context["contact"] == {"first_name": None, "last_name": "Doe", "email": "d@example.com"}
    assert [item["line_total"] for item in context["cart"]["items"]] == [
        Decimal("39.98"),
        Decimal("3.50"),
    ]
    assert context["cart"]["total"] == Decimal("43.48")
    assert context["cart"]["restore_url"] == "https://fern.example"  # no restore link: the store
    assert context["cart"]["items"][1]["image_url"] is None
    # 23:30 UTC on the 9th is already the 10th in Berlin.
    assert context["coupon"] == {
        "code": "FERN-ABCD2345",
        "percent_off": 15,
        "expires_at": "December 10, 2026",
    }
    assert context["last_order"]["items"] == [
        {"name": "Vase", "sku": "", "quantity": 1, "price": Decimal("40.00"), "url": None}
    ]
    assert context["step"] == {"index": 2, "discount_percent": 15}


def test_build_context_without_optional_parts() -> None:
    context = build_context(
        store={"name": "S", "domain": "s.example"},
        contact={"email": "a@b.example"},
        unsubscribe_url="u",
    )
    assert context["cart"] is None and context["coupon"] is None and context["last_order"] is None
    assert set(context) == {
        "store",
        "contact",
        "cart",
        "coupon",
        "last_order",
        "step",
        "campaign",
        "unsubscribe_url",
        "reasons",
    }
    assert context["reasons"] == []


@pytest.mark.parametrize(
    "bad",
    [
        object(),
        Markup("<b>x</b>"),  # would skip escaping
        {1: "x"},
        {"x": SimpleNamespace(first_name="Sam")},  # what a model looks like
        [set()],
        b"bytes",
        len,
    ],
)
def test_check_context_refuses_anything_but_plain_data(bad) -> None:
    with pytest.raises(TypeError):
        check_context({"value": bad})


def test_check_context_lets_inert_values_through() -> None:
    check_context(
        {"price": 1.5, "placed_at": datetime(2026, 3, 3, tzinfo=UTC), "day": date(2026, 3, 3)}
    )


def test_sample_context_is_plain_fixed_and_takes_the_store() -> None:
    sample = sample_context()
    check_context(sample)
    assert sample == sample_context()
    assert sample["cart"]["total"] == Decimal("100.50")
    assert sample["coupon"]["expires_at"] == "December 9, 2026"
    assert sample["last_order"]["items"][0]["name"] == "Waxed Canvas Tote"

    mine = sample_context(
        {"name": "Fern", "domain": "fern.example", "postal_address": "1 Main St", "currency": "EUR"}
    )
    assert mine["store"]["url"] == "https://fern.example"
    assert mine["cart"]["currency"] == "EUR"
    assert mine["cart"]["restore_url"].startswith("https://fern.example/")


def test_sample_context_follows_the_template() -> None:
    assert sample_context(template="cart/step3")["coupon"]["percent_off"] == 20
    winback = sample_context(template="winback/tier2")
    assert winback["cart"] is None and winback["coupon"]["percent_off"] == 15
    assert winback["campaign"]["key"] == "winback"
