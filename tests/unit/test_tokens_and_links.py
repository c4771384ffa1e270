"""Unit tests of signed tokens, coupon codes and link rewriting."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.rendering.coupons import CODE_ALPHABET, new_coupon_code
from mailer.rendering.links import track_links
from mailer.tracking.tokens import _unb64, make_token, read_token

SECRET = "s" * 32


@given(st.integers(min_value=0, max_value=2**63 - 1), st.integers(min_value=0, max_value=2**32 - 1))
def test_tokens_round_trip(object_id: int, extra: int) -> None:
    token = make_token(SECRET, "click", object_id, extra)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert read_token(SECRET, "click", token) == (object_id, extra)


def test_altered_foreign_or_garbage_tokens_are_refused() -> None:
    token = make_token(SECRET, "click", 42, 3)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert read_token(SECRET, "click", flipped) is None
    assert read_token(SECRET, "open", token) is None  # a click token is no open token
    assert read_token("other" * 8, "click", token) is None
    for garbage in ("", "x", "!!!!", "a" * 500, "%00"):
        assert read_token(SECRET, "click", garbage) is None


def test_coupon_codes_have_the_prefix_and_forty_random_bits() -> None:
    codes = {new_coupon_code("SHOP") for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        prefix, body = code.split("-")
        assert prefix == "SHOP" and len(body) == 8 and set(body) <= set(CODE_ALPHABET)
    assert len(CODE_ALPHABET) == 32 and not set("01IO") & set(CODE_ALPHABET)


def test_track_links_rewrites_http_links_only_and_adds_pixel_and_honeypot() -> None:
    html = (
        '<html><body><a href="https://shop.example/p?a=1&amp;b=2">Shop</a>'
        '<a href="mailto:hi@shop.example">Mail</a><a class="x" href="https://keep.example/u">Unsub</a></body></html>'
    )
    tracked = track_links(html, message_id=9, base_url="https://m.test", secret=SECRET, skip_urls=frozenset({"https://keep.example/u"}))
    assert tracked.links == [(1, "https://shop.example/p?a=1&b=2", "content"), (2, "https://m.test/", "honeypot")]
    assert "https://shop.example/p" not in tracked.html
    assert 'href="mailto:hi@shop.example"' in tracked.html
    assert 'href="https://keep.example/u"' in tracked.html
    assert tracked.html.count("https://m.test/t/c/") == 2
    assert "https://m.test/t/o/" in tracked.html
    assert tracked.html.endswith("</body></html>")
    click_tokens = re.findall(r"/t/c/([A-Za-z0-9_-]+)", tracked.html)
    assert [read_token(SECRET, "click", t) for t in click_tokens] == [(9, 1), (9, 2)]


@pytest.mark.parametrize("secret", ["", "s", "k" * 64, "long key é€ " * 20])
def test_token_signature_is_hmac_sha256_of_the_payload(secret: str) -> None:
    raw = _unb64(make_token(secret, "click", 987654321, 7))
    payload = struct.pack(">BQI", 2, 987654321, 7)
    assert raw == payload + hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
