"""db.recordset: a batch's rows travel to PostgreSQL as one JSON document and come back unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

from mailer.db import UTCDateTime, make_engine, recordset, recordset_rows
from tests.support.postgres import TempPostgres

METADATA = MetaData()
SAMPLES = Table(
    "recordset_samples", METADATA,
    Column("id", BigInteger, primary_key=True),
    Column("label", String(64)),
    Column("body", Text, nullable=True),
    Column("at", UTCDateTime()),  # naive UTC in the database, as every time column of the app
    Column("at_tz", DateTime(timezone=True)),
)
NAMES = ("id", "label", "body", "at", "at_tz")
ROWS = recordset(SAMPLES, NAMES)
INSERT = insert(SAMPLES).from_select(NAMES, select(*(ROWS.c[name] for name in NAMES)))


@pytest.fixture(scope="module")
def engine(postgres_server: TempPostgres) -> Iterator[Engine]:
    url = postgres_server.create_database(f"recordset_{os.getpid()}")
    engine = make_engine(url)
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def test_awkward_values_and_datetimes_arrive_as_they_were(engine: Engine) -> None:
    """Quotes, backslashes, braces, commas, newlines, non-ASCII, None and offsets all survive."""
    moment = datetime(2026, 11, 26, 5, 30, 15, 123456, tzinfo=UTC)
    new_york = moment.astimezone(timezone(timedelta(hours=-5)))
    rows = [
        {"id": 1, "label": 'say "hi"', "body": "back\\slash {a,b} 'q'\nline two\ttab", "at": moment, "at_tz": moment},
        # Another offset: the instant must survive in both kinds of column (a naive one ignores offsets).
        {"id": 2, "label": "Zoë – 10 % off 🎁", "body": None, "at": new_york, "at_tz": new_york},
        {"id": 3, "label": "NULL", "body": "", "at": moment + timedelta(days=400), "at_tz": moment},
    ]
    with engine.begin() as conn:
        conn.execute(SAMPLES.delete())
        conn.execute(INSERT, {"rows": recordset_rows(rows)})
        stored = [dict(row._mapping) for row in conn.execute(select(SAMPLES).order_by(SAMPLES.c.id))]
    assert stored == rows  # aware datetimes compare by the instant, whatever the offset


def test_one_statement_serves_any_number_of_rows(engine: Engine) -> None:
    """The statement's text never depends on the batch, so it is compiled once (and cached)."""
    moment = datetime(2026, 11, 26, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(SAMPLES.delete())
        for size in (1, 250):
            start = conn.execute(select(SAMPLES.c.id).order_by(SAMPLES.c.id.desc()).limit(1)).scalar() or 0
            rows = [{"id": start + n + 1, "label": f"row {n}", "body": None, "at": moment, "at_tz": moment}
                    for n in range(size)]
            conn.execute(INSERT, {"rows": recordset_rows(rows)})
        assert conn.execute(select(SAMPLES.c.id)).scalars().all() == list(range(1, 252))


def test_a_naive_datetime_is_refused_before_it_reaches_the_database() -> None:
    """Without an offset PostgreSQL would read it in the session's time zone: refuse it loudly."""
    with pytest.raises(TypeError, match="aware datetimes"):
        recordset_rows([{"id": 1, "at": datetime(2026, 11, 26)}])
    with pytest.raises(TypeError, match="cannot store"):
        recordset_rows([{"id": 1, "blob": b"bytes"}])
