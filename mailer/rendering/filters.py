"""Template filters: `money` and `date`, exact with Decimal and independent of the server's locale."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")

# symbol, symbol goes first, thousands separator, decimal mark
_CURRENCIES: dict[str, tuple[str, bool, str, str]] = {
    "USD": ("$", True, ",", "."),
    "GBP": ("£", True, ",", "."),
    "CAD": ("CA$", True, ",", "."),
    "AUD": ("A$", True, ",", "."),
    "EUR": ("€", False, ".", ","),
}

_DATE_FORMATS = ("long", "short", "iso")


def to_decimal(value: Any) -> Decimal:
    """`value` as a Decimal; floats go through their shortest repr so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("a yes/no value is not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def _group(digits: str, separator: str) -> str:
    groups = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return separator.join(groups)


def money(value: Any, currency: str | None = None) -> str:
    """An amount with its currency: "$1,234.50", "£9.99", "1.234,50 €", "12.50 CHF"; None prints nothing."""
    if value is None or value == "":
        return ""
    amount = to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    whole, _, cents = f"{abs(amount):f}".partition(".")
    code = (currency or "").strip().upper()
    if code in _CURRENCIES:
        symbol, first, thousands, mark = _CURRENCIES[code]
        number = f"{_group(whole, thousands)}{mark}{cents}"
        return f"{sign}{symbol}{number}" if first else f"{sign}{number} {symbol}"
    number = f"{_group(whole, ',')}.{cents}"
    return f"{sign}{number} {code}".rstrip()


_WRITTEN_DATE = re.compile(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})")


def _parse(value: str) -> date | None:
    text = value.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    written = _WRITTEN_DATE.fullmatch(text)  # "December 9, 2026", "Dec 9, 2026"
    if written:
        prefix = written.group(1)[:3].lower()
        for number, month in enumerate(_MONTHS, start=1):
            if month[:3].lower() == prefix:
                try:
                    return date(int(written.group(3)), number, int(written.group(2)))
                except ValueError:
                    return None
    return None


def format_date(value: Any, style: str = "long") -> str:
    """A date for people: "December 9, 2026" (long), "Dec 9, 2026" (short) or "2026-12-09" (iso).

    Takes a date, a datetime, or a string in ISO form or already written out; a
    string it cannot read is printed as it is, and None prints nothing.
    """
    if style not in _DATE_FORMATS:
        raise ValueError(f"date style must be one of {', '.join(_DATE_FORMATS)}, not {style!r}")
    if value is None or value == "":
        return ""
    day = _parse(value) if isinstance(value, str) else value
    if not isinstance(day, date):
        return str(value)
    if style == "iso":
        return day.strftime("%Y-%m-%d")
    # Month names from a fixed table, not strftime("%B"): the server's locale must not leak in.
    month = _MONTHS[day.month - 1]
    if style == "short":
        month = month[:3]
    return f"{month} {day.day}, {day.year}"


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
