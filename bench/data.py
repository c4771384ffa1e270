"""Benchmark data built with set-based SQL (INSERT … SELECT over a number series) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.sql.elements import TextClause

from mailer.campaigns.sync import sync_campaigns
from mailer.campaigns.winback import lapse_key
from mailer.db import Database, UTCDateTime
from mailer.models import Campaign, Message, Store
from mailer.stores import create_store

_stores = count(1)
ITEMS = [{"sku": "MUG-1", "name": "Blue enamel mug", "price": "24.00", "quantity": 1,
          "url": "https://shop.example/p/mug", "image_url": "https://shop.example/i/mug.jpg"}]


@dataclass(frozen=True)
class StoreKeys:
    """A store made for a benchmark, with the keys its clients use."""

    id: int
    public_key: str
    secret_key: str
    domain: str


def new_store(database: Database, now: datetime) -> StoreKeys:
    """A store with a postal address and its campaigns synced from campaigns/*.yaml."""
    number = next(_stores)
    with database.transaction() as session:
        store, secret = create_store(session, name=f"Bench Shop {number}", domain=f"shop{number}.example", now=now)
        store.postal_address = "1 Market Street, Springfield"
        sync_campaigns(session, store, now)
        session.flush()
        return StoreKeys(store.id, store.public_key, secret, store.domain)


def _series(database: Database) -> str:
    """A `WITH` clause naming `s(i)` = 1..:n, for INSERT … SELECT … FROM s on either backend."""
    if database.dialect_name == "postgresql":
        return "WITH s(i) AS (SELECT generate_series(CAST(1 AS BIGINT), CAST(:n AS BIGINT)))"
    return "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)"


def _sql(statement: str, *times: str) -> TextClause:
    """`text(statement)` with the named parameters bound as UTCDateTime (naive UTC on both backends)."""
    return text(statement).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in times))


def _json(database: Database, name: str) -> str:
    return f"CAST(:{name} AS jsonb)" if database.dialect_name == "postgresql" else f":{name}"


def _seconds_before(database: Database, base: str, seconds: str) -> str:
    """SQL for the instant `seconds` (an integer expression) before the bound time `base`."""
    if database.dialect_name == "postgresql":
        return f"(:{base} - ({seconds}) * interval '1 second')"
    # The same text SQLAlchemy stores for a DateTime on SQLite, so comparisons stay textual-exact.
    return f"(strftime('%Y-%m-%d %H:%M:%S', :{base}, '-' || ({seconds}) || ' seconds') || '.000000')"


def winback_campaign_id(database: Database, store_id: int) -> int:
    """The id of the store's win-back campaign."""
    with database.transaction() as session:
        found = session.scalar(select(Campaign.id).where(Campaign.store_id == store_id, Campaign.kind == "winback"))
    if found is None:
        raise RuntimeError(f"store {store_id} has no win-back campaign")
    return int(found)


def plan_winback_wave(database: Database, store_id: int, n: int, *, due: datetime, ordered_at: datetime, batch: str) -> None:
    """`n` one-time buyers (10 to 99 spent) who ordered at `ordered_at`, each enrolled with its tier-1 email due at `due`.

    What `winback_stage` would plan, in four statements: the engine's own stages then find
    nothing more to do for these contacts (their lapse is enrolled and its tier's email planned).
    """
    params = {
        "store": store_id, "n": n, "prefix": f"{batch}-", "t": due, "due": due, "ordered": ordered_at,
        "campaign": winback_campaign_id(database, store_id), "subject": lapse_key(ordered_at),
        "items": json.dumps(ITEMS),
    }
    with database.transaction() as session:
        session.execute(_sql(
            f"{_series(database)} INSERT INTO contacts (store_id, email, first_name, last_name, consent, orders_count, "
            "total_spent, first_order_at, last_order_at, created_at, updated_at) "
            "SELECT :store, :prefix || i || '@example.com', 'Ada', 'Lovelace', 'granted', 1, 10 + (i % 90), :ordered, "
            ":ordered, :ordered, :ordered FROM s", "ordered"), params)
        session.execute(_sql(
            "INSERT INTO orders (store_id, external_id, contact_id, placed_at, total, currency, items, source, created_at) "
            f"SELECT store_id, 'order-' || id, id, :ordered, total_spent, 'USD', {_json(database, 'items')}, 'import', :ordered "
            "FROM contacts WHERE store_id = :store AND email LIKE :prefix || '%'", "ordered"), params)
        session.execute(_sql(
            'INSERT INTO enrollments (store_id, campaign_id, contact_id, subject_key, tier, "group", status, anchor_at, entered_at) '
            "SELECT store_id, :campaign, id, :subject, 1, 'treatment', 'active', :ordered, :t FROM contacts "
            "WHERE store_id = :store AND email LIKE :prefix || '%'", "ordered", "t"), params)
        session.execute(_sql(
            "INSERT INTO messages (store_id, campaign_id, enrollment_id, contact_id, step_index, is_control, status, due_at, "
            "attempts, created_at) SELECT store_id, campaign_id, id, contact_id, 1, false, 'planned', :due, 0, :t "
            "FROM enrollments WHERE campaign_id = :campaign AND subject_key = :subject", "due", "t"), params)
    if database.dialect_name == "postgresql":
        analyze(database)


def customers_and_orders(database: Database, store_id: int, customers: int, orders: int, now: datetime) -> dict[str, int]:
    """`customers` contacts and `orders` orders over the last two years, with the contact rollup filled in.

    10 % are prospects (no order), 40 % one-time buyers and 50 % repeat buyers, who share the
    remaining orders evenly. Order j was placed (j · 7919 mod 730) days and some seconds ago, so
    every tier is populated.
    """
    prospects, one_time = customers // 10, customers * 4 // 10
    repeat = customers - prospects - one_time
    if orders < one_time + 2 * repeat:
        raise ValueError("too few orders for the repeat buyers to have two each")
    params = {"store": store_id, "n": customers, "now": now, "one": one_time, "repeat": repeat}
    with database.transaction() as session:
        session.execute(_sql(
            f"{_series(database)} INSERT INTO contacts (store_id, email, first_name, last_name, consent, orders_count, "
            "total_spent, created_at, updated_at) "
            "SELECT :store, 'c' || i || '@example.com', 'Ada', '', 'granted', 0, 0, :now, :now FROM s", "now"), params)
        first, last, total = session.execute(text(
            "SELECT min(id), max(id), count(*) FROM contacts WHERE store_id = :store"), params).one()
        if last - first + 1 != total:
            raise RuntimeError("contact ids are not contiguous; cannot map orders to contacts")
        params |= {"n": orders, "first": first, "items": json.dumps(ITEMS)}
        # Buyers are the first one_time + repeat contacts; orders past one_time go round the repeat buyers.
        contact = "(:first - 1 + CASE WHEN i <= :one THEN i ELSE :one + 1 + ((i - :one - 1) % :repeat) END)"
        placed = _seconds_before(database, "now", "((i * 7919) % 730) * 86400 + (i * 4111) % 86400")
        session.execute(_sql(
            f"{_series(database)} INSERT INTO orders (store_id, external_id, contact_id, placed_at, total, currency, items, "
            f"source, created_at) SELECT :store, 'o' || i, {contact}, {placed}, 20 + (i % 80), 'USD', "
            f"{_json(database, 'items')}, 'import', :now FROM s", "now"), params)
        session.execute(text(
            "UPDATE contacts SET orders_count = o.n, total_spent = o.spent, first_order_at = o.first_at, "
            "last_order_at = o.last_at FROM (SELECT contact_id, count(*) AS n, sum(total) AS spent, "
            "min(placed_at) AS first_at, max(placed_at) AS last_at FROM orders WHERE store_id = :store "
            "GROUP BY contact_id) AS o WHERE contacts.id = o.contact_id"), params)
    analyze(database)
    return {"customers": customers, "orders": orders, "prospects": prospects, "one_time": one_time, "repeat": repeat}


def analyze(database: Database) -> None:
    """Refresh planner statistics (and, on PostgreSQL, the visibility map index-only scans rely on)."""
    if database.dialect_name == "postgresql":
        with database.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM ANALYZE")
            # A snapshot older than our last writes (autovacuum's own ANALYZE, started meanwhile)
            # keeps VACUUM from marking those pages all-visible: vacuum again until it could.
            for _ in range(5):
                pages, visible = connection.exec_driver_sql(
                    "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'contacts'").one()
                if visible >= pages:
                    break
                time.sleep(0.5)
                connection.exec_driver_sql("VACUUM contacts")
    else:
        with database.transaction() as session:
            session.execute(text("ANALYZE"))


def status_counts(database: Database) -> dict[str, int]:
    """How many outbox rows are in each status."""
    with database.transaction() as session:
        rows = session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
    return {status: int(number) for status, number in rows}


def store_of(database: Database, store_id: int) -> Store:
    """The store row (detached, attributes loaded)."""
    with database.transaction() as session:
        return session.get_one(Store, store_id)


def lapsed(now: datetime, days: int = 100) -> datetime:
    """An order time `days` ago: a customer who ordered then is in the first win-back tier."""
    return (now - timedelta(days=days)).replace(microsecond=0)
