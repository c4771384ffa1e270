"""Make a sent email safe to show in the dashboard: no pixel, links pointing at their real targets."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from mailer.tracking.tokens import read_token

_PIXEL = re.compile(r'<img\b[^>]*\bsrc="[^"]*/t/o/[A-Za-z0-9_-]+"[^>]*>', re.IGNORECASE)
_CLICK = re.compile(r'href="[^"]*/t/c/([A-Za-z0-9_-]+)"', re.IGNORECASE)


def inert_preview(body: str, secret: str, link_url: Callable[[int, int], str | None]) -> str:
    """Drop the open pixel and replace tracked links by the URL they lead to.

    Looking at an email in the outbox must never count as an open or a click. `link_url(message_id,
    position)` returns a stored link's URL (None when unknown: the link then goes nowhere).
    """
    body = _PIXEL.sub("", body)

    def untrack(match: re.Match[str]) -> str:
        found = read_token(secret, "click", match.group(1))
        url = link_url(*found) if found else None
        return f'href="{html.escape(url, quote=True)}"' if url else 'href="#"'

    return _CLICK.sub(untrack, body)
