"""The pure decisions of who an event's row is born with (claimed_contact) and which events are plain views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailer.ingest.apply import claimed_contact, is_plain_view
from mailer.ingest.browsers import Owner
from mailer.ingest.schema import ValidEvent, validate_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANN = Owner(contact_id=7, email="ann@example.com")
CART = {"cart_id": "c1", "items": [{"sku": "MUG", "name": "Mug", "price": "12.00", "quantity": 1}]}


def event(kind: str, **fields: Any) -> ValidEvent:
    """A validated event of `kind` (identify or a track name) from browser b1."""
    fields.setdefault("anonymous_id", "b1")
    if kind == "identify":
        raw = {"id": "e", "type": "identify", **fields}
    else:
        properties = {"product_viewed": {"sku": "MUG"}, "cart_updated": CART, "checkout_started": {"cart_id": "c1"},
                      "order_placed": {"order_id": "o1", "total": "12.00", "currency": "USD"}}[kind]
        raw = {"id": "e", "type": "track", "event": kind, "properties": properties, **fields}
    return validate_event(raw, now=NOW, public=False)


KINDS = ["identify", "product_viewed", "cart_updated", "checkout_started", "order_placed"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_owners_email_or_none_is_born_with_the_owner(kind) -> None:
    if kind != "identify":
        assert claimed_contact(event(kind), ANN) == 7
    assert claimed_contact(event(kind, email="ann@example.com"), ANN) == 7
    # The email is normalized when validated: its case and spaces do not matter.
    assert claimed_contact(event(kind, email=" Ann@EXAMPLE.com "), ANN) == 7


@pytest.mark.parametrize("kind", KINDS)
def test_another_email_or_no_owner_is_born_with_no_contact(kind) -> None:
    assert claimed_contact(event(kind, email="bo@example.com"), ANN) is None  # a shared browser: identify decides
    assert claimed_contact(event(kind, email="ann@example.com"), None) is None  # nobody owns the browser yet
    # A stored email that is not normalized is not the event's: identifying looks it up as normalized.
    assert claimed_contact(event(kind, email="ann@example.com"), Owner(7, "Ann@example.com")) is None


def test_a_plain_view_is_a_product_view_born_with_its_emails_contact_or_without_an_email() -> None:
    assert is_plain_view(event("product_viewed"))
    assert is_plain_view(event("product_viewed"), 7)
    assert is_plain_view(event("product_viewed", email="ann@example.com"), 7)
    assert not is_plain_view(event("product_viewed", email="ann@example.com"))  # not known: it is identified
    assert not is_plain_view(event("product_viewed", email="ann@example.com", anonymous_id=None))
    for kind in ("identify", "cart_updated", "checkout_started", "order_placed"):
        assert not is_plain_view(event(kind, email="ann@example.com"), 7)
        assert not is_plain_view(event(kind, email="ann@example.com"))
