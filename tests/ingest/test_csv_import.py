"""Importing order history from CSV: line-numbered rejects, idempotent re-runs, the rollup and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer.db import Database
from mailer.errors import NotFound, ValidationError
from mailer.ingest.csv_import import MAX_LISTED_ERRORS, import_orders
from mailer.models import Contact, Order
from mailer.stores import create_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MAILER = str(Path(sys.executable).with_name("mailer"))
HEADER = "order_id,email,placed_at,total\n"


def _store(database: Database) -> int:
    with database.transaction() as session:
        store, _secret = create_store(session, name="Tea & Co", domain="tea.example", currency="EUR", now=NOW)
        return store.id


@pytest.fixture
def store_id(committed_database: Database) -> int:
    return _store(committed_database)


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding, newline="")
    return path


def generate_orders(path: Path, rows: int, broken: dict[int, str] | None = None, customers: int = 2500) -> Path:
    """A CSV of `rows` orders over `customers` people; `broken` maps a data row number to a bad line."""
    broken = broken or {}
    with path.open("w", newline="") as out:
        out.write("order_id,email,placed_at,total,currency,first_name\r\n")
        for n in range(1, rows + 1):
            if n in broken:
                out.write(broken[n] + "\r\n")
                continue
            day = 1 + n % 28
            out.write(f"A{n:07d},Person{n % customers}@Example.com,2025-{1 + n % 12:02d}-{day:02d}T10:{n % 60:02d}:00Z,"
                      f"{10 + n % 90}.50,EUR,Ada{n % customers}\r\n")
    return path


def _count(database: Database, model: type) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def test_ten_thousand_rows_with_three_broken_ones(committed_database: Database, store_id: int, tmp_path: Path) -> None:
    broken = {
        17: "A0000017,not-an-email,2025-01-01,10.00,EUR,Bo",
        4242: "A0004242,late@example.com,yesterday,10.00,EUR,Cy",
        9999: "A0009999,neg@example.com,2025-01-01,-5,EUR,Di",
    }
    path = generate_orders(tmp_path / "orders.csv", 10_000, broken)
    seen: list[tuple[int, int]] = []

    first = import_orders(committed_database, store_id, path, now=NOW, progress=lambda d, t: seen.append((d, t)),
                          chunk_size=1500)

    assert (first.imported, first.duplicates) == (9_997, 0)
    # the header is line 1, so data row n sits on line n + 1
    assert [r["line"] for r in first.rejected] == [18, 4243, 10_000]
    errors = [str(r["error"]) for r in first.rejected]
    assert "invalid email" in errors[0] and "placed_at" in errors[1] and "negative" in errors[2]
    assert _count(committed_database, Order) == 9_997
    assert _count(committed_database, Contact) == 2_500
    size = path.stat().st_size
    assert seen[-1] == (size, size) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 2

    again = import_orders(committed_database, store_id, path, now=NOW)
    assert (again.imported, again.duplicates, len(again.rejected)) == (0, 9_997, 3)
    assert _count(committed_database, Order) == 9_997


def test_contacts_get_the_rollup_and_names_but_keep_what_they_had(committed_database: Database, store_id: int, tmp_path: Path) -> None:
    path = _write(tmp_path / "o.csv", (
        "\ufeffOrder_ID, Email ,Placed_At,TOTAL,first_name,last_name,coupon,notes\n"
        "1, Ann@Shop.Example ,2025-05-01,20,Ann,,BACK-ABCDEFGH,ignored column\n"
        "2,ann@shop.example,2025-06-01T09:30:00+02:00,30.456,Annie,Lee,,\n"
        "3,bob@shop.example,2025-02-01 08:00,0,,,,\n"
    ))
    result = import_orders(committed_database, store_id, path, now=NOW)
    assert (result.imported, result.duplicates, result.rejected) == (3, 0, [])
    with committed_database.transaction() as session:
        ann = session.scalar(select(Contact).where(Contact.email == "ann@shop.example"))
        assert ann is not None
        assert (ann.first_name, ann.last_name, ann.orders_count) == ("Ann", "Lee", 2)
        assert ann.total_spent == Decimal("50.46")
        assert ann.first_order_at == datetime(2025, 5, 1, tzinfo=UTC)
        assert ann.last_order_at == datetime(2025, 6, 1, 7, 30, tzinfo=UTC)  # the offset is honoured
        orders = {o.external_id: o for o in session.scalars(select(Order).where(Order.contact_id == ann.id))}
        assert orders["1"].coupon_code == "BACK-ABCDEFGH" and orders["1"].currency == "EUR"  # the store's currency
        assert orders["1"].source == "import"


def test_bad_rows_are_named_by_physical_line_and_good_rows_beside_them_kept(
    committed_database: Database, store_id: int, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"order_id,email,placed_at,total,first_name\n"              # 1
        b"1,a@shop.example,2025-01-01,10,\"Multi\nLine\"\n"           # 2-3: a quoted newline is one row
        b"2,b@shop.example,2025-01-01,10\n"                           # 4: too few columns
        b"3,c@shop.example,2025-01-01,10,x,extra\n"                   # 5: too many
        b"\n"                                                         # 6: blank, ignored
        b",d@shop.example,2025-01-01,10,\n"                           # 7: no order id
        b"5,e@shop.example,2025-13-45,10,\n"                          # 8: no such date
        b"6,f@shop.example,2025-01-01,ten,\n"                         # 9: not a number
        b"7,g@shop.example,2025-01-01,NaN,\n"                         # 10
        b"8,h@shop.example,2099-01-01,10,\n"                          # 11: in the future
        b"9,Jos\xe9@shop.example,2025-01-01,10,Jos\xe9\n"            # 12: Latin-1, not UTF-8
        b"1,a@shop.example,2025-01-01,10,\n"                          # 13: repeats order 1
        b"10,i@shop.example,2025-01-01,10,\n"                         # 14
    )
    result = import_orders(committed_database, store_id, path, now=NOW)
    assert (result.imported, result.duplicates) == (2, 1)
    by_line = {r["line"]: str(r["error"]) for r in result.rejected}
    assert sorted(by_line) == [4, 5, 7, 8, 9, 10, 11, 12]
    assert "expected 5 columns, found 4" in by_line[4] and "found 6" in by_line[5]
    assert "order_id is empty" in by_line[7]
    assert "ISO 8601" in by_line[8] and "not a number" in by_line[9] and "not a number" in by_line[10]
    assert "future" in by_line[11] and "UTF-8" in by_line[12]
    with committed_database.transaction() as session:
        assert set(session.scalars(select(Order.external_id))) == {"1", "10"}
        assert session.scalar(select(Contact.first_name).where(Contact.email == "a@shop.example")) == "Multi\nLine"


def test_an_unclosed_quote_is_reported_with_the_lines_it_swallowed(
    committed_database: Database, store_id: int, tmp_path: Path
) -> None:
    path = _write(tmp_path / "quote.csv", HEADER + '1,"a@shop.example,2025-01-01,10\n2,b@shop.example,2025-01-01,10\n')
    result = import_orders(committed_database, store_id, path, now=NOW)
    assert result.imported == 0
    assert result.rejected[0]["line"] == 2 and "line 2 to 3" in str(result.rejected[0]["error"])


def test_header_problems_are_clear_errors(committed_database: Database, store_id: int, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="missing required column.*placed_at, total"):
        import_orders(committed_database, store_id, _write(tmp_path / "a.csv", "order_id,email\n1,a@b.example\n"), now=NOW)
    with pytest.raises(ValidationError, match="empty"):
        import_orders(committed_database, store_id, _write(tmp_path / "b.csv", ""), now=NOW)
    with pytest.raises(ValidationError, match="repeats column.*email"):
        import_orders(committed_database, store_id, _write(tmp_path / "c.csv", "order_id,email,placed_at,total,Email\n"), now=NOW)
    with pytest.raises(NotFound):
        import_orders(committed_database, store_id + 1000, _write(tmp_path / "d.csv", HEADER), now=NOW)
    assert _count(committed_database, Order) == 0


def test_the_report_lists_at_most_a_thousand_errors(committed_database: Database, store_id: int, tmp_path: Path) -> None:
    bad = "".join(f"{n},nobody,2025-01-01,1\n" for n in range(MAX_LISTED_ERRORS + 50))
    result = import_orders(committed_database, store_id, _write(tmp_path / "bad.csv", HEADER + bad), now=NOW)
    assert len(result.rejected) == MAX_LISTED_ERRORS and result.rejected_count == MAX_LISTED_ERRORS + 50
    assert result.as_dict()["rejected_not_listed"] == 50


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    values.update({
        "MAILER_ENV": "test",
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MAILER_INSTANCE_DIR": str(tmp_path / "instance"),
    })
    return values


def _mailer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILER, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_import_command_prints_the_json_summary(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert _mailer(cli_env, "db", "upgrade").returncode == 0
    store = json.loads(_mailer(cli_env, "store", "create", "--name", "Tea", "--domain", "tea.example", "--json").stdout)
    path = generate_orders(tmp_path / "orders.csv", 500, {3: "A0000003,broken,2025-01-01,1,EUR,X"})

    done = _mailer(cli_env, "import", "orders", "--store", str(store["id"]), str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"imported": 499, "duplicates": 0,
                                       "rejected": [{"line": 4, "error": "invalid email address: 'broken'"}]}
    again = _mailer(cli_env, "import", "orders", "--store", str(store["id"]), str(path))
    assert again.returncode == 0 and again.stdout.startswith("imported 0, duplicates 499, rejected 1")
    assert "line 4: invalid email" in again.stdout

    missing = _write(tmp_path / "missing.csv", "order_id,email,total\n")
    failed = _mailer(cli_env, "import", "orders", "--store", str(store["id"]), str(missing), "--json")
    assert failed.returncode == 1 and "missing required column(s): placed_at" in failed.stderr
    assert "Traceback" not in failed.stderr and failed.stdout == ""
