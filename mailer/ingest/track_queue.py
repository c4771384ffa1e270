"""The queued ingest mode: snippet bodies stored as received by the 202, applied later in order, in bulk, once.

In the default (inline) mode `POST /api/v1/track` applies its events before it answers. In the
queued mode (`MAILER_INGEST_MODE=queued`) the answer only validates the batch, counts the
events already stored as duplicates and keeps the body in `track_queue` with one INSERT; then
`drain` (the worker every second, and every tick first) applies the queued bodies of each
store in the order they came, many requests as one batch, and deletes them in the same
transaction. Applying a body validates it again at its `received_at`, so every event gets the
verdict its 202 gave, and event ids keep it once-only: a body applied twice after a crash adds
nothing. What the 202 cannot see is a replay still in the queue: it is counted as accepted, and
then applied as the duplicate it is.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Insert, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from mailer.clock import utcnow
from mailer.db import Database, UTCDateTime, among, dialect_insert
from mailer.errors import MailerError
from mailer.ingest.apply import (
    IngestingStore,
    IngestResult,
    ValidatedBatch,
    apply_batch,
    validate_batch,
)
from mailer.ingest.payload import batch_of, json_object
from mailer.ingest.schema import ValidEvent
from mailer.models import Event, QueuedTrack, Store, TrackQueueLease
from mailer.tally import Tally

log = logging.getLogger(__name__)

TRACK_KEYS = frozenset({"key", "batch"})  # what a snippet body may hold
# A group is applied as one batch in one transaction: large enough that the batch path's
# statements are shared by many requests, small enough that a transaction stays short.
GROUP_EVENTS = 500
GROUP_ROWS = 200
GROUP_CHARACTERS = 2 * 1024 * 1024  # of bodies read at once (one body may be 1 MB)
# A body whose application fails this many times is left in the queue (with its error) for an
# operator, so one poisonous body never stops its store's queue.
MAX_ATTEMPTS = 5
GIVEN_UP_KEEP_DAYS = 30  # then the daily housekeeping deletes them
# How often the worker (and the embedded scheduler) drains the queue: the delay a queued event
# waits before its contact, cart or order changes.
QUEUE_INTERVAL_SECONDS = 1.0
# A drainer holds its store's queue this long without renewing (it renews with every group, which
# takes well under a second); one that dies leaves the store to others after this.
LEASE_SECONDS = 60.0

_queue = QueuedTrack.__table__
_leases = TrackQueueLease.__table__
_events = Event.__table__


# INSERT one body, returning how many of its (distinct) event ids are already stored events: the
# duplicates, counted in the same round trip. On PostgreSQL the driver sends it itself, the ids
# as one array: SQLAlchemy's execution cost as much as the statement (0.10 of 0.26 ms of CPU
# for a batch of 10, measured in process), and the queued mode's 202 is this statement and a
# validation. Each form is tested on its backend (tests/web/test_track_queue.py).
_QUEUE_BODY_SQL = (
    "INSERT INTO track_queue (store_id, received_at, body, attempts) VALUES (%(store_id)s, %(received_at)s, %(body)s, 0) "
    "RETURNING (SELECT count(*) FROM events WHERE store_id = %(store_id)s AND event_id = ANY(%(event_ids)s))"
)
_QUEUE_BODY = insert(_queue).values(
    store_id=bindparam("b_store_id"), received_at=bindparam("b_received_at"), body=bindparam("b_body"), attempts=0,
).returning(
    select(func.count())
    .select_from(_events)
    .where(_events.c.store_id == bindparam("b_store_id"), _events.c.event_id.in_(bindparam("event_ids", expanding=True)))
    .scalar_subquery()
)
_AS_STORED = UTCDateTime()


def queue_track(connection: Connection, store_id: int, body: str, event_ids: Sequence[str], now: datetime) -> int:
    """Keep one accepted body for later; returns how many of its valid events are duplicates already.

    A second copy of an id within the body is a duplicate as well, as inline ingestion counts it.
    """
    distinct = list(set(event_ids))
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        received_at = _AS_STORED.process_bind_param(now, connection.dialect)  # naive UTC, as every timestamp column
        cursor.execute(_QUEUE_BODY_SQL, {"store_id": store_id, "received_at": received_at, "body": body,
                                         "event_ids": distinct}, prepare=True)
        row = cursor.fetchone()
        assert row is not None
        stored = row[0]
    else:
        stored = connection.execute(
            _QUEUE_BODY, {"b_store_id": store_id, "b_received_at": now, "b_body": body, "event_ids": distinct},
        ).scalar_one()
    return int(stored) + len(event_ids) - len(distinct)


def queue_batch(connection: Connection, store: IngestingStore, raw_events: Sequence[object], body: str, now: datetime) -> IngestResult:
    """Validate a snippet batch and keep its body for the drain: the 202's counts, as inline ingestion answers them."""
    batch = validate_batch(store, raw_events, now=now, public=True)
    event_ids = [event.event_id for _, event in batch.events]
    duplicates = queue_track(connection, store.id, body, event_ids, now) if event_ids else 0
    return IngestResult(accepted=len(event_ids) - duplicates, duplicates=duplicates, rejected=batch.rejected)


def forget_queued(session: Session, store_id: int, email: str, anonymous_ids: Collection[str]) -> int:
    """Delete the queued bodies that name `email` (any case) or one of `anonymous_ids`; returns how many. Flushes.

    For erasure: a body received before it must not bring the person back when applied. A body
    is one browser's batch, so its other events are that visitor's too.
    """
    mentions = [func.lower(_queue.c.body).contains(email.lower(), autoescape=True)]
    mentions += [_queue.c.body.contains(f'"{anonymous_id}"', autoescape=True) for anonymous_id in anonymous_ids]
    result = session.execute(delete(_queue).where(_queue.c.store_id == store_id, or_(*mentions)))
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class DrainReport(Tally):
    """What one drain applied: queued bodies, and their events by outcome."""

    bodies: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0  # bodies whose application raised (retried up to MAX_ATTEMPTS)


@dataclass(frozen=True)
class QueuedBody:
    """One queued row, parsed: its id, when it came, and its events validated as they were then."""

    id: int
    received_at: datetime
    events: list[ValidEvent]
    rejected: int


def queued_store_ids(session: Session) -> list[int]:
    """The stores with bodies waiting (not given up on), oldest first."""
    rows = session.execute(
        select(_queue.c.store_id, func.min(_queue.c.id))
        .where(_queue.c.attempts < MAX_ATTEMPTS)
        .group_by(_queue.c.store_id)
        .order_by(func.min(_queue.c.id))
    )
    return [store_id for store_id, _ in rows]


def next_group(
    session: Session, store: IngestingStore, *, skip: Collection[int] = (), max_events: int = GROUP_EVENTS,
) -> tuple[list[QueuedBody], list[int]]:
    """The oldest queued bodies of `store` to apply together, and the ids of bodies that cannot be read.

    Bodies are taken in id order until `max_events` or GROUP_CHARACTERS (at least one body,
    whatever its size); `skip` names bodies not to take (those that failed earlier in the same drain).
    """
    query = (
        select(_queue.c.id, func.length(_queue.c.body))
        .where(_queue.c.store_id == store.id, _queue.c.attempts < MAX_ATTEMPTS)
        .order_by(_queue.c.id)
        .limit(GROUP_ROWS)
    )
    if skip:
        query = query.where(_queue.c.id.not_in(list(skip)))
    # The bodies' sizes first, then only the bodies the group takes: a queue of 1 MB bodies
    # must not be read 200 at a time.
    taken, characters = [], 0
    for row_id, length in session.execute(query):
        if taken and characters + length > GROUP_CHARACTERS:
            break
        taken.append(row_id)
        characters += length
    rows = session.execute(
        select(_queue.c.id, _queue.c.received_at, _queue.c.body).where(among(session, _queue.c.id, taken)).order_by(_queue.c.id)
    ).all() if taken else []
    group: list[QueuedBody] = []
    unreadable: list[int] = []
    events = 0
    for row_id, received_at, body in rows:
        try:
            raw_events = batch_of(json_object(body.encode(), TRACK_KEYS))
        except MailerError:  # it passed these checks when queued: only a changed schema gets here
            unreadable.append(row_id)
            continue
        if group and events + len(raw_events) > max_events:
            break
        batch = validate_batch(store, raw_events, now=received_at, public=True)
        group.append(QueuedBody(row_id, received_at, [event for _, event in batch.events], len(batch.rejected)))
        events += len(raw_events)
    return group, unreadable


def apply_group(session: Session, store: IngestingStore, group: Sequence[QueuedBody]) -> DrainReport:
    """Apply a group's events as one batch and delete its bodies; the transaction must hold nothing else.

    Applying many requests' events together ends as applying them one request after another
    (apply_batch). `now` (each event row's `received_at`, and what the effects stamp) is the
    group's last arrival.
    """
    events = [event for body in group for event in body.events]
    batch = ValidatedBatch(store, list(enumerate(events)), [], "snippet")
    result = apply_batch(session, batch, max(body.received_at for body in group), own_transaction=True)
    session.execute(delete(_queue).where(among(session, _queue.c.id, [body.id for body in group])))
    session.flush()
    return DrainReport(
        bodies=len(group), accepted=result.accepted, duplicates=result.duplicates,
        rejected=len(result.rejected) + sum(body.rejected for body in group),
    )


def note_failure(session: Session, body_ids: Sequence[int], error: str, *, give_up: bool = False) -> None:
    """Count one failed attempt on these bodies (all attempts when `give_up`), keeping the error. Flushes."""
    attempts = MAX_ATTEMPTS if give_up else _queue.c.attempts + 1
    session.execute(update(_queue).where(_queue.c.id.in_(list(body_ids))).values(attempts=attempts, last_error=error[:2000]))
    session.flush()


def purge_given_up(session: Session, now: datetime, keep_days: int = GIVEN_UP_KEEP_DAYS) -> int:
    """Delete bodies given up on that came more than `keep_days` ago; returns how many. Flushes.

    They hold what visitors sent (emails among it): kept for an operator to look at, not for ever.
    """
    result = session.execute(
        delete(_queue).where(_queue.c.attempts >= MAX_ATTEMPTS, _queue.c.received_at < now - timedelta(days=keep_days))
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def queue_status(session: Session, now: datetime) -> dict[str, float | int]:
    """How far behind the queue is: bodies waiting, the oldest one's age in seconds, and bodies given up on."""
    waiting, oldest = session.execute(
        select(func.count(), func.min(_queue.c.received_at)).where(_queue.c.attempts < MAX_ATTEMPTS)
    ).one()
    given_up = session.scalar(select(func.count()).select_from(_queue).where(_queue.c.attempts >= MAX_ATTEMPTS))
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return {"waiting": int(waiting), "oldest_seconds": round(age, 1), "given_up": int(given_up or 0)}


@functools.cache
def _take_lease_statement(dialect_name: str) -> Insert:
    # INSERT the store's lease; when it has one, take that row over only if it has run out or is
    # the holder's own (renewing it). RETURNING gives the holder only when the row is now ours.
    statement = dialect_insert(dialect_name, _leases).values(
        store_id=bindparam("lease_store"), holder=bindparam("lease_holder"), expires_at=bindparam("lease_until"),
    )
    return statement.on_conflict_do_update(
        index_elements=[_leases.c.store_id],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=or_(_leases.c.expires_at < bindparam("lease_now"), _leases.c.holder == statement.excluded.holder),
    ).returning(_leases.c.holder)


def take_lease(session: Session, store_id: int, holder: str, now: datetime, seconds: float = LEASE_SECONDS) -> bool:
    """Lease the store's queue to `holder` until `now + seconds`, unless someone else's lease runs; True when taken. Flushes.

    The same on both backends (one INSERT … ON CONFLICT DO UPDATE … WHERE). A drainer that dies
    leaves its lease to run out.
    """
    statement = _take_lease_statement(session.get_bind().dialect.name)
    params = {"lease_store": store_id, "lease_holder": holder, "lease_until": now + timedelta(seconds=seconds),
              "lease_now": now}
    taken = session.execute(statement, params).scalar_one_or_none() == holder
    session.flush()
    return taken


def end_lease(session: Session, store_id: int, holder: str) -> None:
    """Give the store's queue back (only if the lease is still the holder's). Flushes."""
    session.execute(delete(_leases).where(_leases.c.store_id == store_id, _leases.c.holder == holder))
    session.flush()


@contextmanager
def store_lease(database: Database, store_id: int, clock: Callable[[], datetime] = utcnow) -> Iterator[str | None]:
    """The holder name of a lease on the store's queue, or None when another drainer holds it.

    One drainer per store keeps its bodies in order, across processes and machines: a row in
    `track_queue_leases`, renewed with each group (take_lease), given back at the end.
    """
    holder = uuid.uuid4().hex
    with database.transaction() as session:
        taken = take_lease(session, store_id, holder, clock())
    if not taken:
        yield None
        return
    try:
        yield holder
    finally:
        with database.transaction() as session:
            end_lease(session, store_id, holder)


def drain(database: Database, *, max_seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> DrainReport:
    """Apply every queued body, store by store, one transaction per group; commits.

    A store another drainer holds the lease of is left to it. `max_seconds` stops between groups, so
    a periodic task never runs into the next one's time.
    """
    report = DrainReport()
    deadline = None if max_seconds is None else clock() + max_seconds
    with database.transaction() as session:
        store_ids = queued_store_ids(session)
    for store_id in store_ids:
        with store_lease(database, store_id) as holder:
            if holder is not None:
                report.add(_drain_store(database, store_id, holder, deadline, clock))
        if deadline is not None and clock() >= deadline:
            break
    if report.bodies or report.failed:
        log.info("track queue: %s", asdict(report))
    return report


def _drain_store(
    database: Database, store_id: int, holder: str, deadline: float | None, clock: Callable[[], float],
) -> DrainReport:
    report = DrainReport()
    failed: set[int] = set()  # bodies that failed in this drain wait for the next one; the others go on
    while deadline is None or clock() < deadline:
        with database.transaction() as session:
            store = session.get(Store, store_id)
            if store is None:  # deleted meanwhile: its queue went with it (ON DELETE CASCADE)
                return report
            if not take_lease(session, store_id, holder, utcnow()):  # renewed; lost only if it ran out
                log.warning("the track queue lease of store %s ran out; another drainer goes on", store_id)
                return report
            group, unreadable = next_group(session, store, skip=failed)
            if unreadable:
                note_failure(session, unreadable, "the queued body cannot be read", give_up=True)
                report.failed += len(unreadable)
            if not group:
                return report
            session.commit()  # the reads and notes only: apply_group needs a transaction of its own
            try:
                report.add(apply_group(session, store, group))
                continue
            except Exception:
                session.rollback()
                if len(group) == 1:
                    log.exception("applying queued track body %s failed", group[0].id)
                    note_failure(session, [group[0].id], _error_text())
                    report.failed += 1
                    failed.add(group[0].id)
                    continue
        # Some body of the group fails: apply them one at a time, so only that one waits.
        for body in group:
            alone = _apply_alone(database, store_id, body)
            if alone.failed:
                failed.add(body.id)
            report.add(alone)
    return report


def _apply_alone(database: Database, store_id: int, body: QueuedBody) -> DrainReport:
    with database.transaction() as session:
        store = session.get(Store, store_id)
        if store is None:
            return DrainReport()
        session.commit()
        try:
            return apply_group(session, store, [body])
        except Exception:
            session.rollback()
            log.exception("applying queued track body %s failed", body.id)
            note_failure(session, [body.id], _error_text())
            return DrainReport(failed=1)


def _error_text() -> str:
    return traceback.format_exc(limit=5)
