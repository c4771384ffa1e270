"""Reading request bodies within the API's size limit; parsing them is mailer.ingest.payload's."""

from __future__ import annotations

from flask import request

from mailer.errors import PayloadTooLarge
from mailer.ingest.payload import MAX_BODY_BYTES

_CHUNK = 64 * 1024


def read_body(limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw request body; 413 when the declared or the actual size is over `limit`."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body is over {limit} bytes")
    stream = request.stream
    chunks: list[bytes] = []
    size = 0
    # Read in chunks and stop one byte past the limit: a body without (or lying about) its
    # Content-Length is never buffered whole.
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over {limit} bytes")
    return b"".join(chunks)

