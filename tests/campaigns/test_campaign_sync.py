"""sync_campaigns against an in-memory SQLite: create, leave alone, update, respect edits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import mailer.models  # noqa: F401  (registers every table on Base.metadata)
from mailer.campaigns import CampaignDefinition, load_definitions, sync_campaigns
from mailer.campaigns.definitions import definition_hash
from mailer.db import Base, Database
from mailer.errors import CampaignDefinitionError
from mailer.models.campaign import Campaign, CampaignStep
from mailer.models.contact import Contact
from mailer.models.enrollment import Enrollment
from mailer.models.store import Store, hash_secret, new_public_key, new_secret_key

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


@pytest.fixture
def session() -> Iterator[Session]:
    db = Database.from_url("sqlite://")
    Base.metadata.create_all(db.engine)
    session = db.session()
    try:
        yield session
    finally:
        session.close()
        db.dispose()


def make_store(session: Session, name: str = "Shop") -> Store:
    store = Store(
        name=name,
        domain=f"{name.lower()}.example",
        public_key=new_public_key(),
        secret_key_hash=hash_secret(new_secret_key()),
        created_at=NOW,
    )
    session.add(store)
    session.flush()
    return store


def campaigns_of(session: Session, store: Store) -> dict[str, Campaign]:
    rows = session.scalars(select(Campaign).where(Campaign.store_id == store.id))
    return {campaign.key: campaign for campaign in rows}


def with_cart_discounts(defn: CampaignDefinition, *discounts: int) -> CampaignDefinition:
    steps = tuple(
        dataclasses.replace(step, discount_percent=discount)
        for step, discount in zip(defn.steps, discounts, strict=True)
    )
    return dataclasses.replace(defn, steps=steps)


def test_first_sync_creates_the_shipped_campaigns(session: Session) -> None:
    store = make_store(session)
    definitions = load_definitions()

    synced = sync_campaigns(session, store, NOW)

    assert [c.key for c in synced] == ["abandoned_cart", "winback"]
    stored = campaigns_of(session, store)
    assert set(stored) == {"abandoned_cart", "winback"}
    for key, campaign in stored.items():
        assert campaign.version == 1
        assert campaign.edited is False
        assert campaign.updated_at == NOW
        assert campaign.definition_hash == definition_hash(definitions[key])
        assert [s.index for s in campaign.steps] == [1, 2, 3]
    cart = stored["abandoned_cart"]
    assert (cart.priority, cart.audience, cart.kind) == (100, "all", "abandoned_cart")
    assert [(s.delay_minutes, s.window_minutes, s.discount_percent) for s in cart.steps] == [
        (0, 0, 10),
        (1440, 0, 15),
        (7200, 2880, 20),
    ]
    assert cart.step(1).requires_consent is False
    winback = stored["winback"]
    assert [(s.tier, s.template) for s in winback.steps] == [
        (1, "winback/tier1"),
        (2, "winback/tier2"),
        (3, "winback/tier3"),
    ]


def test_sync_again_changes_nothing(session: Session) -> None:
    store = make_store(session)
    sync_campaigns(session, store, NOW)
    step_ids = {c.key: [s.id for s in c.steps] for c in campaigns_of(session, store).values()}

    sync_campaigns(session, store, LATER)

    stored = campaigns_of(session, store)
    assert {c.version for c in stored.values()} == {1}
    assert {c.updated_at for c in stored.values()} == {NOW}
    assert {c.key: [s.id for s in c.steps] for c in stored.values()} == step_ids
    assert session.scalar(select(func.count()).select_from(Campaign)) == 2


def test_changed_definition_updates_in_place_and_bumps_version(session: Session) -> None:
    store = make_store(session)
    definitions = load_definitions()
    sync_campaigns(session, store, NOW, definitions)
    cart = campaigns_of(session, store)["abandoned_cart"]
    cart_id, step_ids = cart.id, [s.id for s in cart.steps]

    changed = dict(definitions)
    changed["abandoned_cart"] = dataclasses.replace(
        with_cart_discounts(definitions["abandoned_cart"], 5, 10, 25), name="Cart reminders"
    )
    sync_campaigns(session, store, LATER, changed)

    stored = campaigns_of(session, store)
    cart = stored["abandoned_cart"]
    assert cart.id == cart_id
    assert cart.version == 2
    assert cart.name == "Cart reminders"
    assert cart.updated_at == LATER
    assert cart.definition_hash == definition_hash(changed["abandoned_cart"])
    assert [s.discount_percent for s in cart.steps] == [5, 10, 25]
    assert [s.id for s in cart.steps] == step_ids  # updated, not replaced
    assert stored["winback"].version == 1  # untouched definition, untouched row


def test_steps_are_added_and_removed_to_match(session: Session) -> None:
    store = make_store(session)
    definitions = load_definitions()
    sync_campaigns(session, store, NOW, definitions)

    cart = definitions["abandoned_cart"]
    shorter = {"abandoned_cart": dataclasses.replace(cart, steps=cart.steps[:2])}
    sync_campaigns(session, store, LATER, shorter)
    assert [s.index for s in campaigns_of(session, store)["abandoned_cart"].steps] == [1, 2]
    assert session.scalar(select(func.count()).select_from(CampaignStep)) == 5

    sync_campaigns(session, store, LATER, {"abandoned_cart": cart})
    stored = campaigns_of(session, store)["abandoned_cart"]
    assert [s.index for s in stored.steps] == [1, 2, 3]
    assert stored.version == 3


def test_edited_campaign_is_not_overwritten(session: Session) -> None:
    store = make_store(session)
    definitions = load_definitions()
    sync_campaigns(session, store, NOW, definitions)
    cart = campaigns_of(session, store)["abandoned_cart"]
    cart.edited = True
    cart.step(2).discount_percent = 30  # the marketer's change
    session.flush()

    changed = dict(definitions)
    changed["abandoned_cart"] = with_cart_discounts(definitions["abandoned_cart"], 1, 2, 3)
    sync_campaigns(session, store, LATER, changed)

    cart = campaigns_of(session, store)["abandoned_cart"]
    assert cart.version == 1
    assert cart.updated_at == NOW
    assert [s.discount_percent for s in cart.steps] == [10, 30, 20]


def test_campaigns_missing_from_the_definitions_stay(session: Session) -> None:
    store = make_store(session)
    sync_campaigns(session, store, NOW)

    definitions = load_definitions()
    sync_campaigns(session, store, LATER, {"winback": definitions["winback"]})

    assert set(campaigns_of(session, store)) == {"abandoned_cart", "winback"}


def test_sync_is_scoped_to_the_store(session: Session) -> None:
    first, second = make_store(session, "First"), make_store(session, "Second")
    sync_campaigns(session, first, NOW)
    campaigns_of(session, first)["winback"].edited = True

    sync_campaigns(session, second, NOW)

    assert set(campaigns_of(session, second)) == {"abandoned_cart", "winback"}
    assert not any(c.edited for c in campaigns_of(session, second).values())
    assert session.scalar(select(func.count()).select_from(Campaign)) == 4


def test_kind_cannot_change_under_enrolled_contacts(session: Session) -> None:
    store = make_store(session)
    definitions = load_definitions()
    sync_campaigns(session, store, NOW, definitions)
    winback = campaigns_of(session, store)["winback"]
    contact = Contact(store_id=store.id, email="a@example.com", created_at=NOW, updated_at=NOW)
    session.add(contact)
    session.flush()
    session.add(
        Enrollment(
            store_id=store.id,
            campaign_id=winback.id,
            contact_id=contact.id,
            subject_key="lapse:2025-01-01",
            tier=1,
            anchor_at=NOW,
            entered_at=NOW,
        )
    )
    session.flush()

    as_cart = dataclasses.replace(
        definitions["abandoned_cart"], key="winback", name="Win back lost customers"
    )
    with pytest.raises(CampaignDefinitionError, match="campaign 'winback': kind: cannot change"):
        sync_campaigns(session, store, LATER, {"winback": as_cart})


def test_sync_does_not_commit(session: Session) -> None:
    store = make_store(session)
    session.commit()
    sync_campaigns(session, store, NOW)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0
