"""The owner's report equals what a test computes by hand after real sends, opens, clicks and orders."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from mailer import create_app
from mailer.campaigns.sync import sync_campaigns
from mailer.clock import utcnow
from mailer.delivery import SMTPTransport
from mailer.engine import tick
from mailer.models import Campaign, Enrollment
from mailer.reports.queries import build_report
from mailer.stores import create_store
from tests.support.factories import make_cart, make_contact, make_order

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}
SCANNER = {"User-Agent": "python-requests/2.32.3"}
APPLE_PROXY = {"User-Agent": "Mozilla/5.0"}


def _html(received) -> str:
    return received.message.get_body(preferencelist=("html",)).get_content()


def _path(url: str) -> str:
    return url.removeprefix("http://mailer.test")


def test_report_matches_the_hand_computed_figures(database, settings, smtp_sink) -> None:
    now = utcnow()
    sent_at = now - timedelta(minutes=10)
    with database.transaction() as session:
        store, secret = create_store(session, name="Proof Shop", domain="proof.example", now=now)
        store.postal_address = "1 Proof Street"
        store.settings = {"cost_per_email": 0.05}
        sync_campaigns(session, store, now)
        winback = session.scalar(select(Campaign).where(Campaign.store_id == store.id, Campaign.key == "winback"))
        winback.holdout_percent, winback.edited = 50, True
        lapsed = [make_contact(session, store) for _ in range(24)]
        for person in lapsed:
            make_order(session, person, now - timedelta(days=91))
        shoppers = [make_contact(session, store) for _ in range(3)]
        carts = [make_cart(session, person, now - timedelta(hours=2)) for person in shoppers]
        cart_external_ids = [cart.external_id for cart in carts]
        store_id = store.id

    transport = SMTPTransport(smtp_sink.url)
    tick(database, transport, settings, sent_at)
    with database.transaction() as session:
        groups = dict(session.execute(select(Enrollment.contact_id, Enrollment.group)).all())
    treated = [p for p in lapsed if groups[p.id] == "treatment"]
    control = [p for p in lapsed if groups[p.id] == "control"]
    assert treated and control
    by_recipient = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
    assert set(by_recipient) == {p.email for p in treated + shoppers}  # control is never sent to

    client = create_app(settings, database).test_client()
    auth = {"Authorization": f"Bearer {secret}"}

    def pixel(person) -> str:
        return _path(re.search(r'src="([^"]*/t/o/[^"]+)"', _html(by_recipient[person.email])).group(1))

    def links(person) -> list[str]:
        return [_path(u) for u in re.findall(r'href="([^"]*/t/c/[^"]+)"', _html(by_recipient[person.email]))]

    def order(person, order_id: str, total: str, **properties) -> None:
        event = {"id": str(uuid.uuid4()), "type": "track", "event": "order_placed", "email": person.email,
                 "properties": {"order_id": order_id, "total": total, "currency": "USD", **properties}}
        response = client.post("/api/v1/events", json={"batch": [event]}, headers=auth)
        assert response.status_code == 202 and response.get_json()["accepted"] == 1, response.get_json()

    a, b, c, d = treated[:4]
    # a: opens, then orders with the code from the email: credited by coupon
    client.get(pixel(a), headers=BROWSER)
    code = re.search(r"\b[A-Z0-9]+-[A-Z2-9]{8}\b", by_recipient[a.email].message.get_body(preferencelist=("plain",)).get_content()).group(0)
    order(a, "A-1", "90.00", coupon=code)
    # b: a person's click (twice: still one unique click), then an order without a code: credited by click
    client.get(links(b)[0], headers=BROWSER)
    client.get(links(b)[0], headers=BROWSER)
    order(b, "B-1", "40.00")
    # c: only machines touch it — Apple's proxy fetches the pixel, a scanner follows links and the
    # honeypot — then c orders: no credit, since machines never count
    client.get(pixel(c), headers=APPLE_PROXY)
    for link in links(c):
        client.get(link, headers=SCANNER)
    order(c, "C-1", "25.00")
    # d: unsubscribes with the one-click POST, no cookies
    client.post(_path(by_recipient[d.email].message["List-Unsubscribe"].strip("<>")), data={"List-Unsubscribe": "One-Click"})
    # a control customer orders too: counted in the holdout, credited to nothing
    order(control[0], "K-1", "60.00")
    # cart shopper 0 opens and converts that cart: credited by open
    client.get(pixel(shoppers[0]), headers=BROWSER)
    order(shoppers[0], "S-1", "21.00", cart_id=cart_external_ids[0])

    with database.transaction() as session:
        from mailer.models import Store

        today = utcnow().date()
        report = build_report(session, session.get(Store, store_id), today - timedelta(days=1), today)

    sent = len(treated) + 3
    discount_a = Decimal("90.00") * 10 / 90  # paid 90 after 10 % off → 10 off
    revenue = 90 + 40 + 21
    cost = round(sent * 0.05 + float(discount_a), 2)
    totals = report["totals"]
    assert report["window_days"] == 5
    assert totals == {
        "sent": sent, "delivered": sent, "bounced": 0,
        "opened": 2, "opened_machine": 1, "clicked": 1, "unsubscribed": 1,
        "converted": 3, "revenue": float(revenue),
        "open_rate": round(2 / sent, 4), "click_rate": round(1 / sent, 4), "return_rate": round(3 / sent, 4),
        "cost": cost, "roi": round(revenue / cost, 4),
    }
    campaigns = {c["key"]: c for c in report["campaigns"]}
    assert campaigns["winback"]["metrics"]["converted"] == 2 and campaigns["winback"]["metrics"]["revenue"] == 130.0
    assert campaigns["abandoned_cart"]["metrics"]["converted"] == 1
    assert [s["metrics"]["sent"] for s in campaigns["abandoned_cart"]["steps"]] == [3, 0, 0]
    assert report["tiers"]["90"]["sent"] == len(treated) and report["tiers"]["180"]["sent"] == 0

    holdout = report["holdout"]
    assert holdout["campaigns"] == ["winback"]
    assert holdout["treated"] == {"enrolled": len(treated), "converted": 3, "conversion_rate": round(3 / len(treated), 4), "revenue": 155.0}
    assert holdout["control"] == {"enrolled": len(control), "converted": 1, "conversion_rate": round(1 / len(control), 4), "revenue": 60.0}
    assert holdout["lift"] == round(3 / len(treated) - 1 / len(control), 4)
    low, high = holdout["lift_ci95"]
    assert low < holdout["lift"] < high


def test_report_api_needs_the_secret_key_and_checks_dates(database, settings) -> None:
    with database.transaction() as session:
        store, secret = create_store(session, name="Api Shop", domain="api.example", now=utcnow())
        sync_campaigns(session, store, utcnow())
        other, other_secret = create_store(session, name="Other", domain="other.example", now=utcnow())
    client = create_app(settings, database).test_client()
    assert client.get("/api/v1/report").status_code == 401
    assert client.get("/api/v1/report", headers={"Authorization": "Bearer sk_wrong"}).status_code == 401
    ok = client.get("/api/v1/report?from=2026-01-01&to=2026-01-31", headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 200
    body = ok.get_json()
    assert (body["from"], body["to"], body["window_days"], body["holdout"]) == ("2026-01-01", "2026-01-31", 5, None)
    assert {c["key"] for c in body["campaigns"]} == {"abandoned_cart", "winback"}
    assert set(body["tiers"]) == {"90", "180", "360"}
    bad = client.get("/api/v1/report?from=yesterday", headers={"Authorization": f"Bearer {secret}"})
    assert bad.status_code == 400 and "from must be a date" in bad.get_json()["error"]
    # another store's key sees its own (empty) report, never this store's campaigns
    assert client.get("/api/v1/report", headers={"Authorization": f"Bearer {other_secret}"}).get_json()["campaigns"] == []
