"""Unit tests of the human-or-machine rules."""

from __future__ import annotations

import itertools

import pytest

from mailer.tracking.machine import (
    CLICK_TOO_FAST_SECONDS,
    OPEN_TOO_FAST_SECONDS,
    Verdict,
    classify_click,
    classify_open,
    click_verdicts,
    open_verdicts,
)

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


_AGENTS = [None, "", "Mozilla/5.0", "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0", "python-requests/2.32", "Slackbot 1.0"]
_IPS = [None, "203.0.113.20", "17.58.0.10", "not-an-ip"]
_SECONDS = [None, -3.0, 0.0, 1.999, 2.0, 4.999, 5.0, 3600.0]


def test_open_verdicts_are_classify_opens_answers_for_each_side_of_the_threshold() -> None:
    for agent, ip, seconds in itertools.product(_AGENTS, _IPS, _SECONDS):
        verdicts = open_verdicts(agent, ip)
        too_soon = seconds is not None and seconds < OPEN_TOO_FAST_SECONDS
        picked = verdicts.too_soon if too_soon else verdicts.later
        assert picked == classify_open(agent, ip, seconds), (agent, ip, seconds)


def test_click_verdicts_are_classify_clicks_answers_for_each_link_kind_and_side_of_the_threshold() -> None:
    for agent, method, seconds, honeypot in itertools.product(_AGENTS, ["GET", "HEAD", "head"], _SECONDS, [False, True]):
        verdicts = click_verdicts(agent, method)
        too_soon = seconds is not None and seconds < CLICK_TOO_FAST_SECONDS
        picked = verdicts.honeypot if honeypot else verdicts.too_soon if too_soon else verdicts.later
        assert picked == classify_click(agent, seconds, honeypot=honeypot, method=method), (agent, method, seconds, honeypot)
