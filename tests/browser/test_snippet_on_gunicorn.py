"""The snippet in headless Chromium against the production web server: gunicorn with two LoopWorkers, in their own processes, in each ingest mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.clock import utcnow
from mailer.db import Database
from mailer.ingest.track_queue import drain
from mailer.models import Cart, Contact, Event, QueuedTrack
from mailer.stores import create_store
from tests.browser.conftest import fill_a_cart, serve_store_site
from tests.support.gunicorn import Gunicorn


@dataclass
class Served:
    """The app under gunicorn, the database it writes to and the store it tracks for."""

    url: str
    database: Database
    store_id: int
    public_key: str
    queued: bool
    bodies_applied: int = 0

    def apply_queue(self) -> None:
        """What the worker does every second in the queued ingest mode (nothing to do inline)."""
        if self.queued:
            self.bodies_applied += drain(self.database).bodies


@pytest.fixture(params=["inline", "queued"])
def gunicorn_app(database_factory, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """`gunicorn wsgi:app` with two LoopWorkers on a fresh database, a store on `localhost`, each ingest mode."""
    url = database_factory.url()
    database = Database.from_url(url)
    with database.transaction() as session:
        store, _secret = create_store(session, name="Tea & Co", domain="localhost", now=utcnow())
        store_id, public_key = store.id, store.public_key
    gunicorn = Gunicorn("wsgi:app", tmp_path / "gunicorn.log", workers=2, env={
        "MAILER_DATABASE_URL": url, "MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path / "instance"),
        "MAILER_BASE_URL": "http://mailer.test", "MAILER_SECRET_KEY": "snippet-on-gunicorn-secret-0123456789",
        "MAILER_INGEST_MODE": request.param}).start()
    try:
        yield Served(f"http://127.0.0.1:{gunicorn.port}", database, store_id, public_key, request.param == "queued")
    finally:
        assert gunicorn.stop() == 0
        log = (tmp_path / "gunicorn.log").read_text()
        assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]
        database.dispose()


def test_a_shopper_on_a_store_page_becomes_a_contact_with_cart_and_history(
    gunicorn_app, context, watched_page, wait_until, screenshot
) -> None:
    page, problems = watched_page
    with serve_store_site(gunicorn_app.url, gunicorn_app.public_key) as site:
        fill_a_cart(page, site)
        page.fill("#signup-email", "Shopper@Example.com")
        page.keyboard.press("Tab")
        page.click("#signup button")
        assert page.text_content("#thanks") == "Thanks!"
        screenshot(page, "snippet-store-page-on-gunicorn")
        page.goto(site.page_url("bye.html"))  # leaving: pagehide sends what is left by beacon

        def cart_with_owner() -> Cart | None:
            gunicorn_app.apply_queue()
            with gunicorn_app.database.transaction() as session:
                cart = session.scalar(select(Cart).where(Cart.store_id == gunicorn_app.store_id,
                                                         Cart.contact_id.is_not(None)))
                return cart if cart is not None and sum(item.quantity for item in cart.items) == 3 else None

        cart = wait_until(cart_with_owner, "the shopper's cart, with its owner and 3 items")
    with gunicorn_app.database.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.store_id == gunicorn_app.store_id)).one()
        views = session.scalars(select(Event).where(Event.name == "product_viewed")).all()
    assert contact.email == "shopper@example.com" and cart.contact_id == contact.id
    assert cart.value == Decimal("28.50")
    assert len(views) == 2 and {view.contact_id for view in views} == {contact.id}
    assert problems.page_errors == [] and problems.console_errors == []
    if gunicorn_app.queued:  # the lane answered the snippet's requests; the drain applied every body
        assert gunicorn_app.bodies_applied > 0  # the snippet batches its events: how many requests varies
        with gunicorn_app.database.transaction() as session:
            assert session.scalars(select(QueuedTrack)).all() == []
