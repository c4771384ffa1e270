"""Segmentation: the tier query (`segment_counts`) and the win-back wave (`winback_stage`) on many customers."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from bench.common import BenchPostgres, Stopwatch, median_seconds, new_sqlite_url
from bench.data import analyze, customers_and_orders, new_store
from bench.report import Table, seconds
from mailer.campaigns.winback import winback_stage
from mailer.clock import utcnow
from mailer.db import Database
from mailer.models import Contact, Order, Store
from mailer.segments.lifecycle import audience_of, days_since, tier_for_days
from mailer.segments.queries import segment_counts

TARGET_SECONDS = 0.5
# A tick right after a big wave can be very slow on PostgreSQL (stale statistics): bounded here.
STALE_TIMEOUT_SECONDS = 60.0


@contextmanager
def captured_statements(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """Collect every (SQL, parameters) the engine sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def tier_query_plan(database: Database, store_id: int, now: datetime, *, no_seqscan: bool = False) -> list[str]:
    """The plan of the SQL `segment_counts` sends: EXPLAIN (ANALYZE, BUFFERS) or EXPLAIN QUERY PLAN.

    `no_seqscan` (PostgreSQL) shows the plan it would use were sequential and bitmap scans not allowed.
    """
    with captured_statements(database) as seen, database.transaction() as session:
        segment_counts(session, session.get_one(Store, store_id), now)
    statement, parameters = next((s, p) for s, p in reversed(seen) if "GROUP BY" in s.upper())
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if database.dialect_name == "postgresql" else "EXPLAIN QUERY PLAN "
    with database.engine.connect() as connection:
        if no_seqscan:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
        connection.rollback()
    if database.dialect_name == "postgresql":
        return [str(row[0]) for row in rows]
    return [str(row[-1]) for row in rows]


def plan_summary(plan: list[str]) -> str:
    """One line: the scan used on contacts, heap fetches, and the time PostgreSQL reports."""
    text = "\n".join(plan)
    scan = re.search(r"((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Heap Scan|Seq Scan)[^(\n]*)", text)
    scan = scan or re.search(r"((?:SCAN|SEARCH) contacts[^\n]*)", text)
    parts = [scan.group(1).strip() if scan else "scan: see plan"]
    fetches = re.search(r"Heap Fetches: (\d+)", text)
    if fetches:
        parts.append(f"heap fetches {int(fetches.group(1)):,}")
    buffers = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)
    if buffers:
        parts.append(f"buffers hit {int(buffers.group(1)):,}" + (f" read {int(buffers.group(2)):,}" if buffers.group(2) else ""))
    executed = re.search(r"Execution Time: ([\d.]+) ms", text)
    if executed:
        parts.append(f"execution {float(executed.group(1)):.0f} ms")
    return "; ".join(parts)


def measure(database: Database, label: str, customers: int, orders: int) -> dict[str, Any]:
    """Generate the customers, then time the tier query (median of 5) and two win-back stages."""
    now = utcnow()
    store = new_store(database, now)
    with Stopwatch() as generated:
        shape = customers_and_orders(database, store.id, customers, orders, now)

    with database.transaction() as session:
        store_row = session.get_one(Store, store.id)
        segment_counts(session, store_row, now)  # warm the cache, as a running service would be
        median, samples = median_seconds(lambda: segment_counts(session, store_row, now), repeat=5)
        counts = segment_counts(session, store_row, now)
    plan = tier_query_plan(database, store.id, now)
    one = one_customer_tier(database, store.id, now)

    forced = tier_query_plan(database, store.id, now, no_seqscan=True) if database.dialect_name == "postgresql" else []

    # The wave; the next tick at once, before autovacuum has analysed the new rows (in production
    # it takes up to a minute to: held off here so the figure does not depend on its timing); and
    # the next tick once statistics are fresh: the steady-state cost of a tick with nothing new.
    _autovacuum(database, enabled=False)
    stages = {"wave": timed_winback(database, store.id, now)}
    stages["next, stale statistics"] = timed_winback(database, store.id, now, timeout=STALE_TIMEOUT_SECONDS)
    _autovacuum(database, enabled=True)
    analyze(database)
    stages["next, after ANALYZE"] = timed_winback(database, store.id, now)
    return {"backend": label, "shape": shape, "generate_seconds": generated.seconds, "tier_median_seconds": median,
            "tier_samples": samples, "counts": counts, "one_customer": one, "plan": plan, "plan_summary": plan_summary(plan),
            "plan_no_seqscan": forced, "plan_no_seqscan_summary": plan_summary(forced) if forced else "",
            "winback": stages}


def one_customer_tier(database: Database, store_id: int, now: datetime, sample: int = 500) -> dict[str, float]:
    """Median seconds to answer one customer's tier: from the contact's rollup vs from their orders.

    The rollup (orders_count, last_order_at on the contact, kept current as orders arrive) is
    one primary-key read whatever the store's size; the orders are an index range per customer.
    """
    thresholds = [90, 180, 360]
    with database.transaction() as session:
        ids = list(session.scalars(
            select(Contact.id).where(Contact.store_id == store_id, Contact.orders_count > 0).limit(sample)
        ))

        def from_rollup(contact_id: int) -> tuple[str, int]:
            count, last = session.execute(
                select(Contact.orders_count, Contact.last_order_at).where(Contact.id == contact_id)
            ).one()
            return audience_of(count), tier_for_days(days_since(now, last), thresholds)

        def from_orders(contact_id: int) -> tuple[str, int]:
            count, last = session.execute(
                select(func.count(), func.max(Order.placed_at)).where(Order.contact_id == contact_id)
            ).one()
            return audience_of(count), tier_for_days(days_since(now, last), thresholds)

        agree = all(from_rollup(i) == from_orders(i) for i in ids)
        timings = {}
        for name, answer in (("rollup", from_rollup), ("orders", from_orders)):
            samples = []
            for contact_id in ids:
                started = time.perf_counter()
                answer(contact_id)
                samples.append(time.perf_counter() - started)
            timings[name] = statistics.median(samples)
    return {**timings, "agree": float(agree), "sample": float(len(ids))}


def _autovacuum(database: Database, *, enabled: bool) -> None:
    """Hold autovacuum off the tables the wave fills (PostgreSQL), or give them back to it."""
    if database.dialect_name != "postgresql":
        return
    with database.transaction() as session:
        for table in ("enrollments", "messages"):
            action = "RESET (autovacuum_enabled)" if enabled else "SET (autovacuum_enabled = false)"
            session.execute(text(f"ALTER TABLE {table} {action}"))


def timed_winback(database: Database, store_id: int, now: datetime, timeout: float | None = None) -> dict[str, Any]:
    """One `winback_stage` in its own transaction, timed; on PostgreSQL cancelled after `timeout` seconds."""
    try:
        with Stopwatch() as watch, database.transaction() as session:
            if timeout is not None and database.dialect_name == "postgresql":
                session.execute(text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
            result = winback_stage(session, session.get_one(Store, store_id), now)
    except OperationalError as exc:
        if "statement timeout" not in str(exc):
            raise
        return {"seconds": watch.seconds, "timed_out": True}
    return {"seconds": watch.seconds, "timed_out": False, **result}


def _stage(stage: dict[str, Any]) -> str:
    return f"> {stage['seconds']:.0f} s (cancelled)" if stage["timed_out"] else seconds(stage["seconds"])


def run(quick: bool, workdir: Path, postgres: BenchPostgres) -> Table:
    """The tier query and the win-back wave on PostgreSQL and SQLite."""
    customers, orders = (30_000, 100_000) if quick else (300_000, 1_000_000)
    table = Table(
        title=f"Segmentation: {customers:,} customers, {orders:,} orders",
        headers=["backend", "tier query (median of 5)", f"of target {TARGET_SECONDS:g} s", "win-back wave",
                 "enrolled / planned", "next tick, at once", "next tick, after ANALYZE", "data load"],
    )
    results = []
    for label, url in (("PostgreSQL", postgres.new_database("segment")), ("SQLite", new_sqlite_url(workdir, "segment"))):
        database = Database.from_url(url)
        try:
            results.append(measure(database, label, customers, orders))
        finally:
            database.dispose()
    for r in results:
        wave = r["winback"]["wave"]
        table.add(r["backend"], seconds(r["tier_median_seconds"]),
                  f"{100 * r['tier_median_seconds'] / TARGET_SECONDS:.0f} %", _stage(wave),
                  f"{wave.get('winback_enrolled', 0):,} / {wave.get('winback_planned', 0):,}",
                  _stage(r["winback"]["next, stale statistics"]), _stage(r["winback"]["next, after ANALYZE"]),
                  seconds(r["generate_seconds"]))
    for r in results:
        table.notes.append(f"{r['backend']} plan: {r['plan_summary']}")
        if r["plan_no_seqscan_summary"]:
            table.notes.append(f"{r['backend']} plan with enable_seqscan and enable_bitmapscan off: {r['plan_no_seqscan_summary']}")
    for r in results:
        one = r["one_customer"]
        table.notes.append(
            f"{r['backend']}: one customer's tier from the contact's rollup {one['rollup'] * 1e6:,.0f} µs "
            f"vs from their orders {one['orders'] * 1e6:,.0f} µs (median of {one['sample']:.0f}; answers agree: "
            f"{bool(one['agree'])}); the rollup is one primary-key read at any store size, kept current as orders arrive"
        )
    counts = results[0]["counts"]
    table.notes.append(f"tiers (PostgreSQL): one_time {counts['one_time']}, repeat {counts['repeat']}, "
                       f"prospects {counts['prospects']}; both backends agree: {results[0]['counts'] == results[1]['counts']}")
    table.notes.append("data: set-based INSERT … SELECT, rollup by one UPDATE … FROM, then VACUUM ANALYZE / ANALYZE")
    table.notes.append("next tick, at once = `winback_stage` again right after the wave, autovacuum held off (the stage "
                       "itself ANALYZEs enrollments and messages after a wave of 5,000+ rows; without that, the "
                       f"anti-join on messages turned into a nested loop: seconds, cancelled after {STALE_TIMEOUT_SECONDS:g} s)")
    table.data = {"results": results}
    return table
