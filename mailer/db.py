"""Engine, sessions, the declarative Base, after-commit hooks, and the statement helpers both backends share."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Engine,
    Insert,
    MetaData,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.util import identity_key
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeDecorator

# Constraint names that Alembic can rely on across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
JSONData = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (the same on SQLite and PostgreSQL) and always returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL results on SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONData, list[Any]: JSONData}


def normalize_database_url(url: str) -> str:
    """Map a plain `postgresql://` URL to the installed driver (psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web and the worker read while one writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    # SQLite: take the write lock at BEGIN so read-then-write never deadlocks on upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for `url` with the per-dialect settings this app relies on."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _tune_sqlite)
        # pysqlite's own transaction handling is disabled so BEGIN IMMEDIATE is ours to issue.
        event.listen(engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None))
        event.listen(engine, "begin", _begin_immediate)
        return engine
    # No ping before each checkout: it cost a round trip on every request and task. After a
    # PostgreSQL restart each stale pooled connection fails one transaction instead (SQLAlchemy
    # then drops the pool), which callers already retry: the snippet resends, tasks are re-run.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def insert_ignoring_conflicts(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> int:
    """Insert `rows` into `model`'s table, skipping those that violate a unique key; returns how many went in.

    ON CONFLICT DO NOTHING on both backends. The count comes from RETURNING, not the cursor's
    rowcount, which drivers report differently for multi-row inserts (psycopg says 0).
    """
    if not rows:
        return 0
    connection = session.connection()
    return len(connection.execute(insert_ignoring_statement(connection.dialect.name, model.__table__), rows).all())  # type: ignore[arg-type]


@functools.cache
def insert_ignoring_statement(dialect_name: str, table: Table, returning: str | None = None) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the primary key (or the `returning` column), built once.

    Building a statement costs more Python than running it; the same object keeps its cache
    key and compiled SQL.
    """
    columns = [table.c[returning]] if returning else list(table.primary_key.columns)
    return dialect_insert(dialect_name, table).on_conflict_do_nothing().returning(*columns)


def dialect_insert(dialect_name: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The backend's own INSERT for `table` (the one with ON CONFLICT)."""
    return postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table)


def expire_loaded(session: Session, model: type[Base], primary_key: int) -> None:
    """Expire `model`'s row `primary_key` if the session holds it, after a Core statement changed it.

    Core writes bypass the ORM: without this, an object loaded earlier would show old values.
    """
    loaded = session.identity_map.get(identity_key(model, primary_key))
    if loaded is not None:
        session.expire(loaded)


def refresh_statistics(session: Session, *tables: str) -> None:
    """ANALYZE `tables` now on PostgreSQL (a no-op on SQLite), after a bulk write changed them a lot.

    Until autovacuum gets to it (up to a minute), the planner would plan the next queries with
    the old row counts, and an anti-join that expects an empty table becomes a nested loop.
    ANALYZE samples a fixed number of rows, takes no lock that blocks writers, and may run
    inside the transaction.
    """
    if is_postgresql(session):
        for table in tables:
            session.execute(text(f'ANALYZE "{table}"'))


def commit_each_statement(session: Session) -> None:
    """Let each statement of a session that has not begun commit by itself: for work whose only write is one statement.

    On PostgreSQL a transaction costs two round trips of its own (BEGIN, COMMIT) besides its
    statements; a request that reads and then writes one row (an open, a click, a product view)
    needs neither. The session's `commit()` is then a no-op, and a rollback after the write
    undoes nothing, so the caller must have exactly one write. A session that already began
    keeps its transaction, and so does one on SQLite (in process: no round trips to save) or
    bound to a connection (a test's rolled-back transaction).
    """
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def among(session: Session, column: ColumnElement[Any], values: Collection[Any]) -> ColumnElement[bool]:
    """`column` is one of `values`, written so the statement's text does not grow with the batch.

    A batch of 200 ids is 200 placeholders in `IN (…)`: on PostgreSQL the driver re-parses that long
    statement on every execution; one array parameter keeps the text short and cached (a select
    of 200 messages by id takes a third of the time).
    """
    if is_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def recordset(table: Table, names: Sequence[str]) -> TableValuedAlias:
    """PostgreSQL only: the rows of a JSON array, bound as `rows` (see `recordset_rows`), as a
    derived table of `table`'s columns `names` with their types.

    For INSERT … SELECT and UPDATE … FROM of a whole batch in one statement whose text stays the
    same whatever the batch size (an executemany sends one statement per row). JSON, not one array
    per column: psycopg adapts a list element by element in Python (7 ms for 1,600 links against
    2.6 ms as one `json.dumps`), and the statement built once keeps its cache key.
    """
    document = cast(bindparam("rows", type_=Text()), JSON())
    return (
        func.json_to_recordset(document)
        .table_valued(*(column(name, table.c[name].type) for name in names))
        .render_derived(with_types=True)
    )


def recordset_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """`rows` as the JSON text `recordset` reads (datetimes as ISO 8601 in UTC)."""
    return json.dumps(rows, default=_json_value, separators=(",", ":"))


def _json_value(value: object) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        # In UTC, as UTCDateTime binds it: a timestamp column without time zone ignores the offset.
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot store {value!r} in a recordset (only aware datetimes besides JSON types)")


def is_postgresql(session_or_engine: Session | Engine | Connection) -> bool:
    """True when the bound database is PostgreSQL (for SKIP LOCKED and friends)."""
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


# --- after-commit hooks -----------------------------------------------------------------------
# Work that must only happen once the data is durable (enqueueing a Celery task, say) is
# registered on the session and run after the commit; a rollback discards it.

_HOOKS_KEY = "mailer_after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault(_HOOKS_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit_hooks(session: Session) -> None:
    callbacks = session.info.pop(_HOOKS_KEY, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit_hooks(session: Session) -> None:
    session.info.pop(_HOOKS_KEY, None)


class Database:
    """An engine with its session factory; `transaction()` is the unit of work."""

    def __init__(self, engine: Engine | Connection, **session_options: Any) -> None:
        self.engine = engine
        session_options.setdefault("expire_on_commit", False)
        self.sessionmaker = sessionmaker(bind=engine, **session_options)

    @classmethod
    def from_url(cls, url: str) -> Database:
        """A database for a URL from the settings."""
        return cls(make_engine(url))

    def session(self) -> Session:
        """A new session; the caller commits or rolls back."""
        return self.sessionmaker()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back when it raises."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def one_write(self) -> Iterator[Connection]:
        """A Core connection for reads and at most one write, kept when the block ends, undone if it raises.

        For the endpoints hit by the thousand (the pixel, the click redirect), where an ORM
        session's bookkeeping cost more than their statements. On PostgreSQL each statement
        commits by itself (see commit_each_statement); SQLite and a test's connection get a
        transaction (a savepoint inside the test's).
        """
        if isinstance(self.engine, Connection):
            with self.engine.begin_nested():
                yield self.engine
        elif self.engine.dialect.name == "postgresql":
            with self._autocommit_engine.connect() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    @functools.cached_property
    def _autocommit_engine(self) -> Engine:
        # A small pool of its own whose connections commit each statement from the start:
        # switching a pooled connection to autocommit and back cost 25 µs per request, a
        # tenth of a pixel's. One request at a time per sync worker; the overflow is for threads.
        assert isinstance(self.engine, Engine)
        return make_engine(self.engine.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT",
                           pool_size=2, max_overflow=8)

    @property
    def dialect_name(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    def dispose(self) -> None:
        """Close pooled connections (after fork, at shutdown)."""
        if isinstance(self.engine, Engine):
            self.engine.dispose()
        if "_autocommit_engine" in self.__dict__:
            self.__dict__.pop("_autocommit_engine").dispose()
