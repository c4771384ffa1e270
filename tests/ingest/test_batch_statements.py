"""How many statements `POST /api/v1/track`'s batches send to the database: a ceiling per kind of batch.

The ceilings are today's counts (the same on SQLite and PostgreSQL): a change that adds a
statement to the snippet's requests fails here, and one that saves some lowers them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from mailer.ingest.apply import apply_batch, validate_batch
from tests.ingest.helpers import cart, identify, statements_run, track
from tests.support.factories import T0, make_store

NOW = T0 + timedelta(days=1)


def visitor(name: str, domain: str) -> list[dict[str, Any]]:
    """A visitor's batch of 10 with the email on the identify only: identify, 2 × the same cart, 7 views."""
    items = cart(f"cart-{name}", ("MUG-1", "24.00", 1), ("TEA-2", "13.00", 1), currency="USD", value="37.00",
                 restore_url=f"https://{domain}/cart")
    return [
        identify(f"{name}-0", f"{name}@example.com", anonymous_id=name, traits={"first_name": "Ada"}),
        *(track(f"{name}-{n}", "cart_updated", items, anonymous_id=name) for n in (1, 2)),
        *(track(f"{name}-{n}", "product_viewed", {"sku": "MUG-1", "name": "Blue enamel mug", "price": "24.00"},
                anonymous_id=name) for n in range(3, 10)),
    ]


def again(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events under new ids: the visitor's next request."""
    return [dict(event, id=f"{event['id']}-again") for event in events]


def emailed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with the visitor's email (the identify's): what the snippet sends once it knows it, on every event."""
    email = "ada@example.com"
    return [dict(event, email=email) for event in events]


def bench_mix(v: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """bench/wrk_track.lua's batch of 10: 3 views while anonymous, the identify, 2 cart updates and 4 views with the email."""
    return [*v[3:6], v[0], *emailed(v[1:3] + v[6:])]


# What is sent, the requests in turn (a visitor's events → each request's), and the ceiling of the
# last request's statements.
CASES: list[tuple[str, Callable[[list[dict[str, Any]]], list[list[dict[str, Any]]]], int]] = [
    ("batch of 10, a new visitor", lambda v: [v], 10),
    ("batch of 10, a returning visitor", lambda v: [v, again(v)], 5),
    # The snippet's real traffic once a visitor identified: the email on every event (45 statements
    # each before an event with its browser owner's email skipped the identify path).
    ("batch of 10 with the email on every event, a new visitor", lambda v: [emailed(v)], 10),
    ("batch of 10 with the email on every event, a returning visitor", lambda v: [emailed(v), again(emailed(v))], 5),
    ("the bench's batch of 10, a new visitor", lambda v: [bench_mix(v)], 10),
    ("identify alone", lambda v: [v[:1]], 5),
    ("identify alone, the browser's owner again", lambda v: [v[:1], again(v[:1])], 2),  # 7 before
    ("cart_updated alone, a new cart", lambda v: [v[1:2]], 4),
    ("cart_updated alone, the same cart again", lambda v: [v[1:2], v[2:3]], 2),
    ("cart_updated with the browser owner's email alone, a new cart", lambda v: [v[:1], emailed(v[1:2])], 4),  # 9 before
    ("product_viewed alone", lambda v: [v[3:4]], 1),
    ("product_viewed with the browser owner's email alone", lambda v: [v[:1], emailed(v[3:4])], 1),  # 6 before
]


@pytest.mark.parametrize(("name", "requests", "ceiling"), CASES, ids=[case[0] for case in CASES])
def test_statements_per_track_request(database, connection, name, requests, ceiling) -> None:
    with database.transaction() as session:
        store = make_store(session)
    for events in requests(visitor("ada", store.domain)):
        with database.transaction() as session, statements_run(connection) as seen:
            # What the endpoint does, without HTTP: validate as public, then apply in the request's transaction.
            result = apply_batch(session, validate_batch(store, events, now=NOW, public=True), NOW, own_transaction=True)
        assert (result.accepted, result.rejected) == (len(events), [])
    assert len(seen) <= ceiling, "\n".join([f"{name}: {len(seen)} statements", *(s.split("\n")[0][:120] for s in seen)])
