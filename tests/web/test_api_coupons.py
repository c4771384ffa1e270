"""`POST /api/v1/coupons/validate`: valid, used, expired and unknown codes, scoped by store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mailer import create_app
from mailer.clock import utcnow
from mailer.models import Contact, Store
from tests.ingest.helpers import identify, make_coupon, make_shop, track


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


def test_coupon_statuses(client, database) -> None:
    a, b = make_shop(database, "a.example"), make_shop(database, "b.example")
    client.post("/api/v1/events", json={"batch": [identify("i", "ann@example.com")]}, headers=a.bearer)
    with database.transaction() as session:
        store = session.get(Store, a.id)
        ann = session.scalar(select(Contact).where(Contact.store_id == a.id))
        fresh = make_coupon(session, store, ann, utcnow()).code
        used = make_coupon(session, store, ann, utcnow() - timedelta(days=1)).code
        expired = make_coupon(session, store, ann, utcnow() - timedelta(days=20)).code

    def check(shop, code):
        response = client.post("/api/v1/coupons/validate", json={"code": code}, headers=shop.bearer)
        assert response.status_code == 200
        return response.get_json()

    order = {"order_id": "1", "total": "10", "currency": "USD", "coupon": used}
    client.post("/api/v1/events", json={"batch": [track("o", "order_placed", order, email="ann@example.com")]}, headers=a.bearer)

    valid = check(a, fresh.lower())
    assert valid["status"] == "valid" and valid["code"] == fresh and valid["percent_off"] == 10 and "expires_at" in valid
    assert check(a, used)["status"] == "used"
    assert check(a, expired)["status"] == "expired"
    assert check(a, "NOPE-12345678") == {"code": "NOPE-12345678", "status": "unknown"}
    assert check(b, fresh) == {"code": fresh, "status": "unknown"}  # another store's code does not exist for b
    bad = client.post("/api/v1/coupons/validate", json={"code": 5}, headers=a.bearer)
    assert bad.status_code == 400
    assert client.post("/api/v1/coupons/validate", json={"code": fresh}).status_code == 401
