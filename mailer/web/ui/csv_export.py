"""The report as CSV: one row per store, campaign, step and tier, every cell safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

METRIC_COLUMNS = (
    "sent", "delivered", "bounced", "opened", "opened_machine", "clicked", "unsubscribed", "converted",
    "open_rate", "click_rate", "return_rate", "revenue", "cost", "roi",
)
HEADER = ("scope", "campaign", "campaign_name", "step", "step_name", "tier_days", *METRIC_COLUMNS)

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    """The cell as text, with a leading `'` when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def report_rows(report: Mapping[str, Any], step_names: Mapping[tuple[str, int], str], tier_of_step: Mapping[tuple[str, int], int]) -> list[list[Any]]:
    """The report's rows: the store's totals, then each campaign and its steps, then each tier."""

    def metrics(values: Mapping[str, Any]) -> list[Any]:
        return [values.get(column) for column in METRIC_COLUMNS]

    rows: list[list[Any]] = [["total", "", "", "", "", "", *metrics(report["totals"])]]
    for campaign in report["campaigns"]:
        rows.append(["campaign", campaign["key"], campaign["name"], "", "", "", *metrics(campaign["metrics"])])
        for step in campaign["steps"]:
            key = (campaign["key"], step["index"])
            rows.append([
                "step", campaign["key"], campaign["name"], step["index"], step_names.get(key, ""),
                tier_of_step.get(key, ""), *metrics(step["metrics"]),
            ])
    for days, values in report["tiers"].items():
        rows.append(["tier", "", "", "", "", days, *metrics(values)])
    return rows


def to_csv(rows: Iterable[Iterable[Any]], header: Iterable[str] = HEADER) -> str:
    """CSV text (RFC 4180, CRLF) with every cell neutralized."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralize(cell) for cell in row])
    return buffer.getvalue()
