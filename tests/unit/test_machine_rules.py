"""Unit tests of the human-or-machine rules."""

from __future__ import annotations

import pytest

from mailer.tracking.machine import Verdict, classify_click, classify_open

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


@pytest.mark.parametrize(
    ("agent", "ip", "seconds", "expected"),
    [
        (BROWSER, "203.0.113.9", 3600, Verdict(False)),
        (GMAIL_PROXY, "66.249.84.1", 600, Verdict(False)),  # Gmail fetches when the person opens
        ("Mozilla/5.0", "17.58.1.2", 5, Verdict(True, "privacy_proxy")),
        (BROWSER, "17.1.2.3", 900, Verdict(True, "privacy_proxy")),
        ("python-requests/2.32", "198.51.100.1", 900, Verdict(True, "scanner")),
        ("", "198.51.100.1", 900, Verdict(True, "scanner")),
        (BROWSER, "198.51.100.1", 0.5, Verdict(True, "prefetch")),
        (BROWSER, "not-an-ip", None, Verdict(False)),
    ],
)
def test_classify_open(agent: str, ip: str, seconds: float | None, expected: Verdict) -> None:
    assert classify_open(agent, ip, seconds) == expected


def test_classify_click() -> None:
    assert classify_click(BROWSER, 120, honeypot=False) == Verdict(False)
    assert classify_click(BROWSER, 120, honeypot=True) == Verdict(True, "honeypot")
    assert classify_click(BROWSER, 3, honeypot=False) == Verdict(True, "too_fast")
    assert classify_click("Mozilla/5.0 (compatible; Barracuda Sentinel)", 600, honeypot=False) == Verdict(True, "scanner")
    assert classify_click(BROWSER, 600, honeypot=False, method="HEAD") == Verdict(True, "head_request")
