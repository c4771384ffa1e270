"""Shared fixtures: settings, a migrated database per backend rolled back per test, SMTP, factories."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `tests.support` importable without packaging the tests

from mailer.config import Settings, load_settings  # noqa: E402
from mailer.db import Database, make_engine  # noqa: E402
from mailer.migrate import upgrade  # noqa: E402
from tests.support.postgres import TempPostgres  # noqa: E402
from tests.support.smtp_server import SMTPSink  # noqa: E402

BACKENDS = [b for b in os.environ.get("MAILER_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """One PostgreSQL cluster for the whole run, in a temp dir, on 127.0.0.1."""
    server = TempPostgres().start()
    yield server
    server.stop()


class DatabaseFactory:
    """Makes fresh, migrated databases on a backend (for tests that need real commits)."""

    def __init__(self, backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.tmp = tmp_path_factory
        self.request = request
        self.count = 0

    def url(self) -> str:
        """A new empty database's URL, migrated to head."""
        self.count += 1
        if self.backend == "sqlite":
            url = f"sqlite:///{self.tmp.mktemp('db') / 'mailer.db'}"
        else:
            server: TempPostgres = self.request.getfixturevalue("postgres_server")
            url = server.create_database(f"mailer_{os.getpid()}_{id(self)}_{self.count}")
        upgrade(url)
        return url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend a DB test runs on; every DB test runs on each."""
    return str(request.param)


@pytest.fixture(scope="session")
def database_factory(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> DatabaseFactory:
    """Fresh migrated databases on the current backend."""
    return DatabaseFactory(backend, tmp_path_factory, request)


@pytest.fixture(scope="session")
def migrated_url(database_factory: DatabaseFactory) -> str:
    """One migrated database per backend, shared by the rolled-back tests."""
    return database_factory.url()


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings: captured email, a fixed secret, an example base URL."""
    return load_settings(
        {"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path / "instance")},
        base_url="http://mailer.test",
        database_url="sqlite://",
    )


@pytest.fixture
def connection(migrated_url: str) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back when the test ends."""
    engine = make_engine(migrated_url)
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()
    engine.dispose()


@pytest.fixture
def database(connection: Connection) -> Database:
    """A Database whose commits are savepoints inside the test's transaction."""
    return Database(connection, join_transaction_mode="create_savepoint")


@pytest.fixture
def session(database: Database) -> Iterator:
    """A session on the rolled-back database."""
    s = database.session()
    yield s
    s.close()


@pytest.fixture
def committed_database(database_factory: DatabaseFactory) -> Iterator[Database]:
    """A fresh database with real commits (for concurrency tests), dropped with the run."""
    db = Database.from_url(database_factory.url())
    yield db
    db.dispose()
