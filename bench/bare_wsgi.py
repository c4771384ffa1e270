"""The ingest ceilings: bare WSGI apps that parse the body as the API does and answer, touching nothing else.

`POST /` parses and answers; `POST /insert` also stores the body with one INSERT and a commit
through psycopg (no Flask, no SQLAlchemy): the floor cost of one durable write per request,
which any endpoint that answers only after its data is stored pays. `GET` answers the pixel.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
FLOOR_TABLE = "bench_floor"
_connection: Any = None


def _store(body: bytes) -> None:
    global _connection
    if _connection is None:  # one connection per worker process, opened after the fork
        import psycopg

        _connection = psycopg.connect(os.environ["BENCH_FLOOR_DSN"])
    with _connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)", (body.decode(),))
    _connection.commit()


def app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    """POST: parse the JSON body (decimals as Decimal, like the API), maybe store it, answer 202; GET: the pixel."""
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length)
        data = json.loads(raw.decode("utf-8-sig"), parse_float=Decimal)
        if environ.get("PATH_INFO") == "/insert":
            _store(raw)
        body = json.dumps({"accepted": len(data.get("batch", [])), "duplicates": 0, "rejected": []}).encode()
        start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL)))])
    return [PIXEL]
