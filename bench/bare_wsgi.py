"""The ingest ceiling: a bare WSGI app that parses the body as the API does and answers, touching nothing else."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    """POST: parse the JSON body (decimals as Decimal, like the API) and answer 202; GET: the 1×1 pixel."""
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length).decode("utf-8-sig"), parse_float=Decimal)
        body = json.dumps({"accepted": len(data.get("batch", [])), "duplicates": 0, "rejected": []}).encode()
        start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL)))])
    return [PIXEL]
