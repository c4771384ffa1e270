"""Importing a store's order history from CSV: streamed, chunked, idempotent, bad rows reported."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailer.clock import parse_instant
from mailer.db import Database
from mailer.errors import NotFound, ValidationError
from mailer.ingest.identity import normalize_email
from mailer.ingest.orders import NewOrder, record_orders
from mailer.models import Contact, Order, Store

REQUIRED_COLUMNS = ("order_id", "email", "placed_at", "total")
OPTIONAL_COLUMNS = ("currency", "first_name", "last_name", "coupon")
# The report lists this many rejected rows; the rest are only counted, so a file of garbage
# cannot grow the report (or the JSON on stdout) without bound.
MAX_LISTED_ERRORS = 1000
# A clock skew or time-zone slip of a day is tolerated; orders further in the future are typos.
FUTURE_TOLERANCE = timedelta(days=1)
MAX_TOTAL = Decimal("999999999999.99")  # Numeric(14, 2)
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


@dataclass
class ImportResult:
    """What an import did: orders added, orders already known, and the rows it skipped."""

    imported: int = 0
    duplicates: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    rejected_count: int = 0

    def reject(self, line: int, error: str) -> None:
        """Count a skipped row; list it while the list is under its cap."""
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_ERRORS:
            self.rejected.append({"line": line, "error": error})

    def as_dict(self) -> dict[str, object]:
        """The CLI's JSON summary; `rejected_not_listed` appears only when the list was capped."""
        data: dict[str, object] = {"imported": self.imported, "duplicates": self.duplicates, "rejected": self.rejected}
        if self.rejected_count > len(self.rejected):
            data["rejected_not_listed"] = self.rejected_count - len(self.rejected)
        return data


@dataclass(frozen=True)
class _Row:
    """One valid CSV row, ready to record."""

    line: int
    order_id: str
    email: str
    placed_at: datetime
    total: Decimal
    currency: str
    first_name: str
    last_name: str
    coupon: str | None


class _LineReader:
    """Yields the file's lines as text, counting bytes (for progress) and lines that are not UTF-8.

    Reading bytes line by line keeps memory flat whatever the file size, and decoding each line on
    its own lets one badly encoded row be rejected instead of aborting the whole import.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes_read = 0
        self.line = 0
        self.undecodable: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            for raw in handle:
                self.line += 1
                self.bytes_read += len(raw)
                if self.line == 1 and raw.startswith(b"\xef\xbb\xbf"):  # Excel's UTF-8 BOM
                    raw = raw[3:]
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.undecodable.add(self.line)
                    yield raw.decode("utf-8", errors="replace")


def _header(columns: list[str]) -> dict[str, int]:
    """Column name → index; raises ValidationError naming any missing or repeated column."""
    names = [name.strip().lower() for name in columns]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise ValidationError(f"the header repeats column(s): {', '.join(repeated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ValidationError(
            f"the header is missing required column(s): {', '.join(missing)} "
            f"(expected {','.join(REQUIRED_COLUMNS)}, optionally {','.join(OPTIONAL_COLUMNS)})"
        )
    return {name: index for index, name in enumerate(names) if name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}


def _parse_row(values: list[str], columns: dict[str, int], width: int, line: int, currency: str, now: datetime) -> _Row:
    """Validate one row; raises ValidationError with a message fit for the report."""
    if len(values) != width:
        raise ValidationError(f"expected {width} columns, found {len(values)}")

    def get(name: str) -> str:
        index = columns.get(name)
        return values[index].strip() if index is not None else ""

    for name in REQUIRED_COLUMNS:
        if not get(name):
            raise ValidationError(f"{name} is empty")
    order_id = get("order_id")
    if len(order_id) > 128:
        raise ValidationError("order_id is longer than 128 characters")
    email = normalize_email(get("email"))
    try:
        placed_at = parse_instant(get("placed_at"))
    except ValueError as exc:
        raise ValidationError(f"placed_at: {exc}") from exc
    if placed_at > now + FUTURE_TOLERANCE:
        raise ValidationError(f"placed_at is in the future: {get('placed_at')!r}")
    try:
        total = Decimal(get("total"))
    except InvalidOperation as exc:
        raise ValidationError(f"total is not a number: {get('total')[:40]!r}") from exc
    if not total.is_finite():
        raise ValidationError(f"total is not a number: {get('total')[:40]!r}")
    if total < 0:
        raise ValidationError(f"total is negative: {get('total')}")
    if total > MAX_TOTAL:
        raise ValidationError(f"total is too large: {get('total')[:40]}")
    row_currency = get("currency") or currency
    if not _CURRENCY.match(row_currency):
        raise ValidationError(f"currency must be a 3-letter code, got {row_currency[:20]!r}")
    coupon = get("coupon") or None
    if coupon is not None and len(coupon) > 64:
        raise ValidationError("coupon is longer than 64 characters")
    return _Row(
        line=line, order_id=order_id, email=email, placed_at=placed_at, total=total.quantize(Decimal("0.01")),
        currency=row_currency.upper(), first_name=get("first_name")[:200], last_name=get("last_name")[:200],
        coupon=coupon,
    )


def _span(first: int, last: int) -> str:
    """A hint for a rejected row that ran over several lines, which usually means a stray quote."""
    return f" (the row runs from line {first} to {last}: an unclosed quote?)" if last > first else ""


def _record_chunk(session: Session, store_id: int, rows: list[_Row], now: datetime, result: ImportResult) -> None:
    """Record one chunk's orders; the caller's transaction makes the chunk all-or-nothing."""
    known = set(session.scalars(
        select(Order.external_id).where(Order.store_id == store_id, Order.external_id.in_({r.order_id for r in rows}))
    ))
    # One query for the chunk's existing contacts instead of one per row.
    contacts: dict[str, Contact] = {
        contact.email: contact
        for contact in session.scalars(
            select(Contact).where(Contact.store_id == store_id, Contact.email.in_({r.email for r in rows}))
        )
    }
    new_emails: dict[str, _Row] = {}
    for row in rows:  # the first row of a new customer gives the names; later rows only fill gaps
        if row.email not in contacts and row.order_id not in known:
            new_emails.setdefault(row.email, row)
    if new_emails:
        # New customers in one INSERT, then read back as rows the rollup can update.
        session.execute(insert(Contact), [
            {"store_id": store_id, "email": email, "first_name": row.first_name, "last_name": row.last_name,
             "consent": "unknown", "orders_count": 0, "total_spent": Decimal("0"), "created_at": now, "updated_at": now}
            for email, row in new_emails.items()
        ])
        contacts.update({
            contact.email: contact
            for contact in session.scalars(
                select(Contact).where(Contact.store_id == store_id, Contact.email.in_(list(new_emails)))
            )
        })
    batch: list[tuple[Contact, NewOrder]] = []
    for row in rows:
        if row.order_id in known:  # already imported, or earlier in this file
            result.duplicates += 1
            continue
        known.add(row.order_id)
        contact = contacts[row.email]
        # The same rule as get_or_create_contact: fill in names we lack, never overwrite.
        for key, value in (("first_name", row.first_name), ("last_name", row.last_name)):
            if value and not getattr(contact, key):
                setattr(contact, key, value)
        batch.append((contact, NewOrder(external_id=row.order_id, placed_at=row.placed_at, total=row.total,
                                        currency=row.currency, coupon_code=row.coupon, source="import")))
    result.imported += record_orders(session, batch, now)


def _commit_chunk(database: Database, store_id: int, rows: list[_Row], now: datetime, result: ImportResult) -> None:
    """Record a chunk in its own transaction, retrying once if a concurrent writer won a race."""
    for attempt in (1, 2):
        counts = ImportResult()
        try:
            with database.transaction() as session:
                _record_chunk(session, store_id, rows, now, counts)
        except IntegrityError:
            # A webhook or another import inserted the same contact or order meanwhile: the retry
            # sees that row and counts it as known.
            if attempt == 2:
                raise
            continue
        result.imported += counts.imported
        result.duplicates += counts.duplicates
        return


def import_orders(
    database: Database,
    store_id: int,
    path: Path,
    *,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 2000,
) -> ImportResult:
    """Import orders from a CSV file into a store; see DESIGN §4 `mailer import orders`.

    The file is streamed and each chunk of `chunk_size` rows is committed on its own, so memory
    stays flat on a million rows and a failure keeps the chunks before it. Order ids already in
    the store (or earlier in the file) count as duplicates, so running an import again adds nothing.
    `progress(bytes_read, total_bytes)` is called after each chunk.
    """
    with database.transaction() as session:
        store = session.get(Store, store_id)
        if store is None:
            raise NotFound(f"no store with id {store_id}")
        store_currency = store.currency
    total_bytes = path.stat().st_size
    lines = _LineReader(path)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError(f"{path.name} is empty: a header line is required") from None
    except csv.Error as exc:
        raise ValidationError(f"line 1: the header is not valid CSV: {exc}") from None
    columns = _header(header)
    width = len(header)

    result = ImportResult()
    chunk: list[_Row] = []
    while True:
        first_line = reader.line_num + 1  # a quoted field may span lines: report where the row starts
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.reject(first_line, f"not valid CSV: {exc}{_span(first_line, reader.line_num)}")
            continue
        if not values:  # a blank line
            continue
        if lines.undecodable and any(first_line <= n <= reader.line_num for n in lines.undecodable):
            lines.undecodable.clear()
            result.reject(first_line, "not valid UTF-8 text (save the file as UTF-8)")
            continue
        try:
            chunk.append(_parse_row(values, columns, width, first_line, store_currency, now))
        except ValidationError as exc:
            result.reject(first_line, exc.message + _span(first_line, reader.line_num))
            continue
        if len(chunk) >= chunk_size:
            _commit_chunk(database, store_id, chunk, now, result)
            chunk = []
            if progress is not None:
                progress(lines.bytes_read, total_bytes)
    if chunk:
        _commit_chunk(database, store_id, chunk, now, result)
    if progress is not None:
        progress(total_bytes, total_bytes)
    return result
