"""The API's JSON bodies: strict parsing, allowed keys, the event batch and its limits (no Flask, so the track queue reads them too)."""

from __future__ import annotations

import json
from decimal import Decimal

from mailer.errors import PayloadTooLarge, ValidationError

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 500


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> object:
    """Parse a body as JSON (whatever its Content-Type, for beacons); decimals stay Decimal."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("body is not UTF-8 text") from exc
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValidationError("body is not valid JSON: nested too deeply") from exc
    except ValueError as exc:
        raise ValidationError(f"body is not valid JSON: {exc}") from exc


def json_object(body: bytes, allowed: frozenset[str]) -> dict[str, object]:
    """The body as a JSON object with no keys beyond `allowed`."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ValidationError("body must be a JSON object")
    unknown = sorted(key for key in data if key not in allowed)
    if unknown:
        raise ValidationError(f"unknown key {unknown[0][:40]!r} (allowed: {', '.join(sorted(allowed))})")
    return data


def batch_of(data: dict[str, object]) -> list[object]:
    """The body's `batch`: a list of at most MAX_BATCH_EVENTS events."""
    batch = data.get("batch")
    if not isinstance(batch, list):
        raise ValidationError("batch must be a list of events")
    if len(batch) > MAX_BATCH_EVENTS:
        raise PayloadTooLarge(f"batch has {len(batch)} events; at most {MAX_BATCH_EVENTS} per request")
    return batch
