"""A bare WSGI app that tells a test what the server gave it (for the LoopWorker tests)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer by path: /slow, /spin, /boom, /inject, /closing, /empty, /write; anything else (and /slow, /spin) echoes the request as JSON."""
    path = environ["PATH_INFO"]
    query = {name: values[0] for name, values in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/slow":
        Path(query["flag"]).write_text(str(os.getpid()))  # tells the test the request is being served now
        time.sleep(float(query.get("seconds", "0.5")))
    if path == "/spin":  # busy for `ms` milliseconds of CPU, as a request doing real work is
        until = time.process_time() + float(query.get("ms", "1")) / 1000
        while time.process_time() < until:
            pass
    if path == "/boom":
        raise RuntimeError("the probe fails on purpose")
    if path == "/inject":
        start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: stolen=1")])
        return [b"never sent"]
    if path == "/closing":
        start_response("200 OK", [("Content-Length", "3"), ("Connection", "close")])
        return [b"bye"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then ", b"returned"]
    body = environ["wsgi.input"].read()
    echo = {
        "pid": os.getpid(),
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "protocol": environ["SERVER_PROTOCOL"],
        "scheme": environ["wsgi.url_scheme"],
        "remote": [environ["REMOTE_ADDR"], environ["REMOTE_PORT"]],
        "content_length": environ.get("CONTENT_LENGTH"),
        "content_type": environ.get("CONTENT_TYPE"),
        "body": body.decode("latin-1"),
        "headers": {key: value for key, value in environ.items() if key.startswith("HTTP_")},
    }
    answer = json.dumps(echo).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]
