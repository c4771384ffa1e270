"""Figures as printed: aligned text tables with notes, and the raw numbers kept for --json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """One benchmark's printed result: a title, columns, rows of cells, notes, and the raw data."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, *cells: object) -> None:
        """Append a row; cells are shown with str()."""
        self.rows.append([str(cell) for cell in cells])


def render(table: Table) -> str:
    """The table as monospaced text, columns aligned, notes below."""
    columns = len(table.headers)
    rows = [row + [""] * (columns - len(row)) for row in table.rows]
    widths = [max(len(cells[index]) for cells in [table.headers, *rows]) for index in range(columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out = [f"== {table.title}", line(table.headers), line(["-" * width for width in widths])]
    out += [line(row) for row in rows]
    out += [f"  * {note}" for note in table.notes]
    return "\n".join(out)


def rate(value: float | None, unit: str = "/s") -> str:
    """A throughput, rounded for reading: 1,234/s."""
    return "n/a" if value is None else f"{value:,.0f}{unit}"


def ratio(value: float | None, ceiling: float | None) -> str:
    """`value` as a percentage of `ceiling`."""
    if value is None or not ceiling:
        return "n/a"
    return f"{100 * value / ceiling:.0f} %"


def seconds(value: float | None) -> str:
    """A duration: milliseconds under a second, else seconds."""
    if value is None:
        return "n/a"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def megabytes(value: float | None) -> str:
    """A memory size in MB."""
    return "n/a" if value is None else f"{value:.0f} MB"
