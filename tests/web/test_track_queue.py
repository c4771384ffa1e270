"""The queued ingest mode: `POST /api/v1/track` answers as inline does, and the drained queue ends as inline leaves it."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from mailer import create_app
from mailer.clock import utcnow
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import CaptureTransport
from mailer.engine import tick
from mailer.ingest import track_queue
from mailer.ingest.track_queue import MAX_ATTEMPTS, drain
from mailer.models import Event, QueuedTrack, Store
from mailer.web.api.ratelimit import Limit, TokenBucketLimiter, use_limiter
from tests.ingest.helpers import Shop, cart, identify, iso, make_shop, track
from tests.ingest.test_batch_identity import end_state
from tests.support.factories import T0

NOW = T0 + timedelta(days=3)
ORIGIN = {"Origin": "https://www.shop.example"}


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths stamp NOW: inline's view and the lane (the queue applies each body at its received_at)."""
    monkeypatch.setattr("mailer.web.api.events.utcnow", lambda: NOW)
    monkeypatch.setattr("mailer.web.api.track_lane.utcnow", lambda: NOW)


def clients(settings: Settings, database: Database) -> tuple[Any, Any]:
    """A test client of each mode on the same database."""
    inline = create_app(settings, database).test_client()
    queued = create_app(dataclasses.replace(settings, ingest_mode="queued"), database).test_client()
    return inline, queued


def post(client: Any, shop: Shop, batch: list[Any], **headers: str) -> Any:
    return client.post("/api/v1/track", data=json.dumps({"key": shop.public_key, "batch": batch}),
                       content_type="text/plain;charset=UTF-8", headers=headers or ORIGIN)


def queued_bodies(database: Database) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(QueuedTrack)) or 0


def test_the_lane_answers_202_with_the_counts_and_cors_and_applies_nothing_until_drained(settings, database, frozen) -> None:
    shop = make_shop(database)
    inline, queued = clients(settings, database)
    batch = [
        identify("e1", "ann@example.com", anonymous_id="b1", timestamp=iso(NOW)),
        track("e2", "cart_updated", cart("c1", ("MUG", "12.50", 2)), anonymous_id="b1", email="ann@example.com"),
        track("e3", "product_viewed", {"sku": "MUG", "url": "https://evil.example/p"}, anonymous_id="b1"),
        identify("e1", "ann@example.com"),  # a second copy in the same body
        "not an event",
    ]
    answer = post(queued, shop, batch)
    assert answer.status_code == 202
    assert answer.get_json() == {"accepted": 2, "duplicates": 1, "rejected": [
        {"index": 2, "error": "properties.url: must be on the store's domain (shop.example)"},
        {"index": 4, "error": "event must be an object"},
    ]}
    assert answer.headers["Access-Control-Allow-Origin"] == "https://www.shop.example"
    assert answer.headers["Vary"] == "Origin"
    assert answer.data.endswith(b"\n")
    with database.transaction() as session:
        assert end_state(session, shop.id)["events"] == {}
    assert queued_bodies(database) == 1

    report = drain(database)
    assert (report.bodies, report.accepted, report.duplicates, report.rejected, report.failed) == (1, 2, 1, 2, 0)
    assert queued_bodies(database) == 0
    with database.transaction() as session:
        state = end_state(session, shop.id)
    assert state["events"] == {"e1": "ann@example.com", "e2": "ann@example.com"}
    assert state["carts"] == {"c1": "ann@example.com"}
    # Replayed after it was applied: a duplicate in the answer, as inline says.
    again = post(queued, shop, [identify("e1", "ann@example.com")]).get_json()
    assert again == {"accepted": 0, "duplicates": 1, "rejected": []}
    # The same request inline answers the same.
    assert post(inline, shop, [identify("e1", "ann@example.com")]).get_json() == again


def test_the_lane_answers_cors_only_for_the_stores_own_site(settings, database) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    other = post(queued, shop, [identify("x1", "a@b.co")], Origin="https://evilshop.example")
    assert other.status_code == 202 and "Access-Control-Allow-Origin" not in other.headers
    local = post(queued, shop, [identify("x2", "a@b.co")], Origin="http://127.0.0.1:8000")  # allowed in test and development
    assert local.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"\xff\xfe", 400, "body is not UTF-8 text"),
        (b'{"key": "pk_x", "batch": [], "extra": 1}', 400, "unknown key 'extra'"),
        (b'{"key": "KEY", "batch": {"id": 1}}', 400, "batch must be a list of events"),
        (b'{"key": "pk_nope", "batch": []}', 401, "unknown public key"),
        (b'{"batch": []}', 401, "missing key"),
        (b'{"key": "KEY", "batch": [' + b",".join([b"{}"] * 501) + b"]}", 413, "batch has 501 events"),
        (b'{"key": "KEY", "batch": ["' + b"x" * (1024 * 1024) + b'"]}', 413, "body is over"),
    ],
)
def test_bodies_the_lane_cannot_take_get_flasks_own_answer_and_queue_nothing(settings, database, body: bytes, status: int, error: str) -> None:
    shop = make_shop(database)
    inline, queued = clients(settings, database)
    body = body.replace(b"KEY", shop.public_key.encode())
    answers = [client.post("/api/v1/track", data=body, content_type="text/plain", headers=ORIGIN) for client in (inline, queued)]
    assert [answer.status_code for answer in answers] == [status, status]
    assert answers[0].get_json() == answers[1].get_json()
    assert answers[1].get_json()["error"].startswith(error)
    assert queued_bodies(database) == 0


def test_a_request_over_its_rate_is_429_from_flask_and_queues_nothing(settings, database) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    use_limiter(queued.application, "public", TokenBucketLimiter(Limit(rate=0.001, burst=2)))
    answers = [post(queued, shop, [identify(f"r{n}", "a@b.co")]) for n in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].headers["Retry-After"]
    assert queued_bodies(database) == 2


def test_the_server_api_and_preflights_stay_with_flask(settings, database) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    answer = queued.post("/api/v1/events", json={"batch": [identify("s1", "a@b.co")]}, headers=shop.bearer)
    assert answer.get_json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    preflight = queued.options("/api/v1/track", headers={**ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
    assert queued_bodies(database) == 0


# -- the queue applied in bulk ends as inline ingestion leaves it ----------------------------------------

EMAILS = ["ann@example.com", "bob@example.com", "cy@example.com"]
BROWSERS = ["b1", "b2", "b3", "b4"]


def random_requests(rng: random.Random, count: int) -> list[list[Any]]:
    """Snippet requests as a site sends them: views, identifies, carts, checkouts, orders, replays and junk."""
    sent: list[dict[str, Any]] = []
    requests = []
    for n in range(count):
        batch: list[Any] = []
        for m in range(rng.choice([1, 1, 1, 2, 5, 10])):
            browser, email, event_id = rng.choice(BROWSERS), rng.choice(EMAILS + [None, None]), f"e{n}-{m}"
            at = iso(NOW - timedelta(minutes=count - n, seconds=-m))
            fields: dict[str, Any] = {"anonymous_id": browser, "timestamp": at, **({"email": email} if email else {})}
            roll = rng.random()
            if roll < 0.08 and sent:
                event = rng.choice(sent)  # a replay
            elif roll < 0.12:
                event = {"id": event_id, "type": "track", "event": "nope"}
            elif roll < 0.25:
                event = identify(event_id, email or rng.choice(EMAILS), anonymous_id=browser, timestamp=at,
                                 traits={"first_name": rng.choice(["Ann", "Bob", None])})
            elif roll < 0.45:
                items = [("MUG", "12.00", rng.randint(1, 3))] if rng.random() < 0.85 else []
                event = track(event_id, "cart_updated", cart(f"c{browser}", *items), **fields)
            elif roll < 0.5:
                event = track(event_id, "checkout_started", {"cart_id": f"c{browser}"}, **fields)
            elif roll < 0.56:
                event = track(event_id, "order_placed", {"order_id": f"o{n}", "total": "24.00", "currency": "EUR",
                                                         "cart_id": f"c{browser}"}, **fields)
            else:
                event = track(event_id, "product_viewed", {"sku": "MUG"}, **fields)
            if isinstance(event, dict) and event.get("event") != "nope":
                sent.append(event)
            batch.append(event)
        requests.append(batch)
    return requests


@pytest.mark.parametrize("seed", range(6))
def test_random_traffic_queued_and_drained_ends_as_inline(settings, database, frozen, seed: int) -> None:
    rng = random.Random(seed)
    requests = random_requests(rng, 40)
    inline_shop, queued_shop = make_shop(database, name="Inline"), make_shop(database, name="Queued")
    inline, queued = clients(settings, database)
    inline_answers, queued_answers = [], []
    for batch in requests:
        inline_answers.append(post(inline, inline_shop, batch).get_json())
        queued_answers.append(post(queued, queued_shop, batch).get_json())
        if rng.random() < 0.3:  # the worker comes by now and then: groups of several requests
            drain(database)
    drain(database)
    assert queued_bodies(database) == 0
    with database.transaction() as session:
        assert end_state(session, queued_shop.id) == end_state(session, inline_shop.id)
    for ours, theirs in zip(queued_answers, inline_answers, strict=True):
        assert ours["rejected"] == theirs["rejected"]
        assert ours["accepted"] + ours["duplicates"] == theirs["accepted"] + theirs["duplicates"]
        # A replay of an event still queued is counted as accepted (and applied as a duplicate).
        assert ours["duplicates"] <= theirs["duplicates"]


def test_drained_after_every_request_the_answers_are_inlines_exactly(settings, database, frozen) -> None:
    requests = random_requests(random.Random(99), 30)
    inline_shop, queued_shop = make_shop(database, name="Inline"), make_shop(database, name="Queued")
    inline, queued = clients(settings, database)
    for batch in requests:
        assert post(queued, queued_shop, batch).get_json() == post(inline, inline_shop, batch).get_json()
        drain(database)
    with database.transaction() as session:
        assert end_state(session, queued_shop.id) == end_state(session, inline_shop.id)


def test_a_body_that_fails_to_apply_waits_alone_and_its_neighbours_are_applied(settings, database, monkeypatch) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    for n in range(3):
        post(queued, shop, [identify(f"p{n}", f"p{n}@example.com")])
    real_apply = track_queue.apply_batch

    def failing_on_p1(session, batch, now, **kwargs):
        if any(event.event_id == "p1" for _, event in batch.events):
            raise RuntimeError("boom")
        return real_apply(session, batch, now, **kwargs)

    monkeypatch.setattr(track_queue, "apply_batch", failing_on_p1)
    report = drain(database)
    assert (report.bodies, report.accepted, report.failed) == (2, 2, 1)
    with database.transaction() as session:
        assert set(session.scalars(select(Event.event_id).where(Event.store_id == shop.id))) == {"p0", "p2"}
        waiting = session.execute(select(QueuedTrack.attempts, QueuedTrack.last_error)).one()
    assert waiting.attempts == 1 and "RuntimeError: boom" in waiting.last_error
    for _ in range(MAX_ATTEMPTS):
        drain(database)
    with database.transaction() as session:
        assert session.scalar(select(QueuedTrack.attempts)) == MAX_ATTEMPTS  # given up on: kept for an operator
    monkeypatch.setattr(track_queue, "apply_batch", real_apply)
    assert drain(database).bodies == 0  # and no longer tried


def test_a_tick_applies_the_queue_before_it_looks_for_abandoned_carts(settings, database) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    at = utcnow() - timedelta(hours=2)  # the public API takes timestamps near the present only
    batch = [
        identify("t1", "ann@example.com", anonymous_id="b1", traits={"consent": "granted"}, timestamp=iso(at)),
        track("t2", "cart_updated", cart("c1", ("MUG", "12.50", 1)), anonymous_id="b1", timestamp=iso(at)),
    ]
    assert post(queued, shop, batch).get_json()["accepted"] == 2
    report = tick(database, CaptureTransport(database), settings, utcnow())
    assert report.queued_applied == 2
    assert report.planned["cart_enrolled"] == 1  # the cart, abandoned for two hours, was seen by this very tick
    assert queued_bodies(database) == 0
    again = tick(database, CaptureTransport(database), settings, utcnow())
    assert (again.queued_applied, again.planned["cart_enrolled"]) == (0, 0)


def test_healthz_tells_how_far_behind_the_queue_is(settings, database, monkeypatch) -> None:
    shop = make_shop(database)
    inline, queued = clients(settings, database)
    assert "track_queue" not in inline.get("/healthz").get_json()
    post(queued, shop, [identify("h1", "a@b.co")])
    monkeypatch.setattr("mailer.web.health.utcnow", lambda: utcnow() + timedelta(seconds=30))
    status = queued.get("/healthz").get_json()["track_queue"]
    assert status["waiting"] == 1 and 29 <= status["oldest_seconds"] <= 40 and status["given_up"] == 0


def test_a_body_without_a_length_goes_through_flask_and_is_queued_all_the_same(settings, database) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    body = json.dumps({"key": shop.public_key, "batch": [identify("n1", "a@b.co"), "junk"]})
    # A chunked request reaches the app with no CONTENT_LENGTH: the lane leaves it to Flask's view.
    answer = queued.post("/api/v1/track", data=body, content_type="text/plain", headers=ORIGIN,
                         environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    assert answer.status_code == 202
    assert answer.get_json() == {"accepted": 1, "duplicates": 0, "rejected": [{"index": 1, "error": "event must be an object"}]}
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
    assert queued_bodies(database) == 1
    assert drain(database).accepted == 1


def test_a_group_stops_at_its_size_and_the_next_drain_goes_on(settings, database, monkeypatch) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    for n in range(5):
        post(queued, shop, [identify(f"g{n}-{m}", f"g{n}@example.com") for m in range(3)])
    monkeypatch.setattr(track_queue, "GROUP_CHARACTERS", 1)  # one body per group, whatever its size
    groups = []
    real_apply_group = track_queue.apply_group
    monkeypatch.setattr(track_queue, "apply_group", lambda session, store, group: groups.append(len(group)) or real_apply_group(session, store, group))
    assert drain(database).accepted == 15
    assert groups == [1, 1, 1, 1, 1]
    monkeypatch.setattr(track_queue, "GROUP_CHARACTERS", 10**9)
    for n in range(5):
        post(queued, shop, [identify(f"h{n}-{m}", f"h{n}@example.com") for m in range(3)])
    with database.transaction() as session:
        store = session.get(Store, shop.id)
        group, unreadable = track_queue.next_group(session, store, max_events=7)
    assert ([len(body.events) for body in group], unreadable) == ([3, 3], [])  # a third body would pass 7 events


def test_erasing_a_contact_forgets_what_the_snippet_sent_about_them_that_is_still_queued(settings, database) -> None:
    shop = make_shop(database)
    _, queued = clients(settings, database)
    post(queued, shop, [identify("a1", "ann_x@example.com", anonymous_id="ann-browser")])
    drain(database)  # Ann is a contact with her browser
    post(queued, shop, [identify("a2", "ANN_X@Example.com", traits={"first_name": "Ann"})])  # another case
    post(queued, shop, [track("a3", "product_viewed", {"sku": "MUG"}, anonymous_id="ann-browser")])
    post(queued, shop, [identify("b1", "bob@example.com", anonymous_id="bob-browser")])
    post(queued, shop, [identify("c1", "annxx@example.com")])  # `_` in her address is not a wildcard
    answer = queued.delete("/api/v1/contacts/ann_x@example.com", headers=shop.bearer)
    assert answer.status_code == 204
    assert queued_bodies(database) == 2
    drain(database)
    with database.transaction() as session:
        state = end_state(session, shop.id)
    assert sorted(state["contacts"]) == ["annxx@example.com", "bob@example.com"]
    assert sorted(state["events"]) == ["b1", "c1"]
