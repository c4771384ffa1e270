"""Pure rules that tell a person's open or click from a machine's (privacy proxies, prefetchers, scanners)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# Security gateways and link checkers that fetch every URL in a message before a person sees it.
_SCANNER_AGENTS = re.compile(
    r"bot\b|spider|crawler|curl/|wget/|python-requests|python-urllib|go-http-client|java/|okhttp|"
    r"barracuda|proofpoint|mimecast|forcepoint|symantec|trend ?micro|sophos|fortiguard|"
    r"safelinks|microsoft office|ms-office|skypeuripreview|slackbot|headlesschrome|phantomjs",
    re.IGNORECASE,
)
# Apple Mail Privacy Protection fetches every image through Apple's relays, whether opened or not.
_APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
# A click this soon after delivery is a scanner following links on arrival (DESIGN §3).
CLICK_TOO_FAST_SECONDS = 5.0
# An open this soon after delivery is a prefetch on arrival, not a person reading.
OPEN_TOO_FAST_SECONDS = 2.0


@dataclass(frozen=True)
class Verdict:
    """`machine` with the rule that said so, or a person."""

    machine: bool
    reason: str | None = None


HUMAN = Verdict(False)


def _is_apple_relay(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in _APPLE_NETWORK
    except ValueError:
        return False


def classify_open(user_agent: str | None, ip: str | None, seconds_since_sent: float | None) -> Verdict:
    """Decide whether a pixel fetch was a person opening the email."""
    agent = (user_agent or "").strip()
    if _is_apple_relay(ip) or agent == "Mozilla/5.0":
        return Verdict(True, "privacy_proxy")  # MPP fetches with a bare "Mozilla/5.0" from Apple's range
    if not agent or _SCANNER_AGENTS.search(agent):
        return Verdict(True, "scanner")
    if seconds_since_sent is not None and seconds_since_sent < OPEN_TOO_FAST_SECONDS:
        return Verdict(True, "prefetch")
    return HUMAN


def classify_click(
    user_agent: str | None, seconds_since_sent: float | None, *, honeypot: bool, method: str = "GET"
) -> Verdict:
    """Decide whether a click was a person following a link."""
    if honeypot:
        return Verdict(True, "honeypot")  # the hidden link no person can see
    if method.upper() == "HEAD":
        return Verdict(True, "head_request")
    agent = (user_agent or "").strip()
    if not agent or _SCANNER_AGENTS.search(agent):
        return Verdict(True, "scanner")
    if seconds_since_sent is not None and seconds_since_sent < CLICK_TOO_FAST_SECONDS:
        return Verdict(True, "too_fast")
    return HUMAN


@dataclass(frozen=True)
class OpenVerdicts:
    """classify_open's answers for one fetch before its message is read: opened too soon after sending, or later."""

    too_soon: Verdict
    later: Verdict


@dataclass(frozen=True)
class ClickVerdicts:
    """classify_click's answers for one request before its link is read: a honeypot, too soon after sending, or later."""

    honeypot: Verdict
    too_soon: Verdict
    later: Verdict


def open_verdicts(user_agent: str | None, ip: str | None) -> OpenVerdicts:
    """Both of classify_open's answers for this fetch, so one statement can store the one the sending time picks."""
    return OpenVerdicts(classify_open(user_agent, ip, 0.0), classify_open(user_agent, ip, OPEN_TOO_FAST_SECONDS))


def click_verdicts(user_agent: str | None, method: str = "GET") -> ClickVerdicts:
    """classify_click's three possible answers for this request, picked by the link's kind and the sending time."""
    return ClickVerdicts(
        classify_click(user_agent, None, honeypot=True, method=method),
        classify_click(user_agent, 0.0, honeypot=False, method=method),
        classify_click(user_agent, CLICK_TOO_FAST_SECONDS, honeypot=False, method=method),
    )
