"""CaptureTransport: exact bytes kept per store, in a transaction of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

import mailer.models  # noqa: F401  (registers every table for create_all)
from mailer.db import Base, Database
from mailer.delivery import CaptureTransport, Envelope, get_captured, list_captured
from mailer.models import CapturedEmail, Store

RAW = b"From: s@a.example\r\nSubject: =?utf-8?b?w7w=?=\r\n\r\n\xe2\x82\xac bytes \x00\xff\r\n.\r\n"


def add_store(database: Database, name: str) -> int:
    with database.transaction() as session:
        store = Store(
            name=name,
            domain=f"{name}.example",
            public_key=f"pk_{name}",
            secret_key_hash=f"hash_{name}",
            created_at=datetime.now(UTC),
        )
        session.add(store)
        session.flush()
        return store.id


@pytest.fixture
def memory_db() -> Iterator[Database]:
    database = Database.from_url("sqlite://")
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


def count_captured(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(CapturedEmail)) or 0)


def test_send_keeps_the_exact_bytes_and_the_envelope(memory_db: Database) -> None:
    store_id = add_store(memory_db, "a")
    before = datetime.now(UTC)
    envelope = Envelope(
        "shop@a.example", "ann@customer.example", store_id=store_id, message_id=42, subject="Ü"
    )
    CaptureTransport(memory_db).send(envelope, RAW)

    with memory_db.transaction() as session:
        (row,) = session.scalars(select(CapturedEmail)).all()
        assert row.raw == RAW
        assert (row.store_id, row.message_id, row.sender, row.recipient, row.subject) == (
            store_id,
            42,
            "shop@a.example",
            "ann@customer.example",
            "Ü",
        )
        assert before - timedelta(seconds=1) <= row.created_at <= datetime.now(UTC)


def test_very_long_subjects_are_cut_to_the_column(memory_db: Database) -> None:
    CaptureTransport(memory_db).send(
        Envelope("s@a.example", "r@b.example", subject="x" * 2000), b"x"
    )
    with memory_db.transaction() as session:
        assert len(session.scalars(select(CapturedEmail.subject)).one()) == 500


def test_the_callers_rollback_does_not_remove_the_captured_row(memory_db: Database) -> None:
    store_id = add_store(memory_db, "a")
    caller = memory_db.session()
    caller.add(
        Store(
            name="b",
            domain="b.example",
            public_key="pk_b",
            secret_key_hash="hb",
            created_at=datetime.now(UTC),
        )
    )
    CaptureTransport(memory_db).send(Envelope("s@a.example", "r@b.example", store_id=store_id), RAW)
    caller.rollback()
    caller.close()

    assert count_captured(memory_db) == 1
    with memory_db.transaction() as session:
        assert session.scalars(select(Store.name)).all() == ["a"]


def test_independent_of_an_open_transaction_on_postgresql(
    committed_database: Database, backend: str
) -> None:
    """The caller has written and flushed; the capture commits anyway and survives its rollback."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: the capture would wait for the caller's transaction")
    store_id = add_store(committed_database, "a")
    caller = committed_database.session()
    caller.add(
        Store(
            name="b",
            domain="b.example",
            public_key="pk_b",
            secret_key_hash="hb",
            created_at=datetime.now(UTC),
        )
    )
    caller.flush()
    CaptureTransport(committed_database).send(
        Envelope("s@a.example", "r@b.example", store_id=store_id), RAW
    )
    caller.rollback()
    caller.close()

    assert count_captured(committed_database) == 1
    with committed_database.transaction() as session:
        assert session.scalars(select(Store.name)).all() == ["a"]


def test_list_and_get_are_scoped_by_store(memory_db: Database) -> None:
    a, b = add_store(memory_db, "a"), add_store(memory_db, "b")
    transport = CaptureTransport(memory_db)
    for n in range(3):
        transport.send(
            Envelope("s@a.example", f"r{n}@x.example", store_id=a, subject=f"a{n}"), b"a"
        )
    transport.send(Envelope("s@b.example", "r@x.example", store_id=b, subject="b0"), b"b")

    with memory_db.transaction() as session:
        assert [row.subject for row in list_captured(session, a)] == ["a2", "a1", "a0"]
        assert [row.subject for row in list_captured(session, a, limit=2)] == ["a2", "a1"]
        (of_b,) = list_captured(session, b)
        assert get_captured(session, b, of_b.id) is not None
        assert get_captured(session, a, of_b.id) is None  # another store's email stays hidden
        assert get_captured(session, a, 10_000) is None


def test_close_is_harmless(memory_db: Database) -> None:
    transport = CaptureTransport(memory_db)
    transport.close()
    transport.close()
    transport.send(Envelope("s@a.example", "r@b.example"), b"x")
    assert count_captured(memory_db) == 1


def test_meanwhile_runs_after_the_email_is_stored(memory_db: Database) -> None:
    store_id = add_store(memory_db, "a")
    seen: list[int] = []
    envelope = Envelope("shop@a.example", "ann@customer.example", store_id=store_id)
    CaptureTransport(memory_db).send(envelope, RAW, meanwhile=lambda: seen.append(count_captured(memory_db)))
    assert seen == [1]
