"""Rewrite a rendered email's links for click tracking and add the open pixel and honeypot link."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from mailer.tracking.tokens import make_token

_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)


@dataclass(frozen=True)
class TrackedHtml:
    """The HTML to send and the links it points through (position → original URL, kind)."""

    html: str
    links: list[tuple[int, str, str]]


def track_links(
    body: str,
    *,
    message_id: int,
    base_url: str,
    secret: str,
    skip_urls: frozenset[str] = frozenset(),
) -> TrackedHtml:
    """Point every http(s) link at the click redirect, append the pixel and a hidden honeypot link.

    The click token names the message and the link's position, so the redirect can only lead to
    a URL stored for that message. The honeypot is invisible to people and followed by scanners.
    """
    links: list[tuple[int, str, str]] = []

    def rewrite(match: re.Match[str]) -> str:
        url = html.unescape(match.group(2))
        if url in skip_urls:
            return match.group(0)
        position = len(links) + 1
        links.append((position, url, "content"))
        tracked = f"{base_url}/t/c/{make_token(secret, 'click', message_id, position)}"
        return f"{match.group(1)}{tracked}{match.group(3)}"

    rewritten = _HREF.sub(rewrite, body)
    honeypot_position = len(links) + 1
    links.append((honeypot_position, base_url + "/", "honeypot"))
    honeypot = f"{base_url}/t/c/{make_token(secret, 'click', message_id, honeypot_position)}"
    pixel = f"{base_url}/t/o/{make_token(secret, 'open', message_id)}"
    extra = (
        f'<a href="{honeypot}" style="display:none;font-size:0;color:transparent" aria-hidden="true" tabindex="-1">&#8203;</a>'
        f'<img src="{pixel}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    index = rewritten.lower().rfind("</body>")
    rewritten = rewritten + extra if index < 0 else rewritten[:index] + extra + rewritten[index:]
    return TrackedHtml(html=rewritten, links=links)
