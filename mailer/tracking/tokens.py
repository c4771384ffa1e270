"""Signed, URL-safe tokens for the open pixel, click redirect and unsubscribe links."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import struct

# One byte names what the token is for, so an open token can never pass as a click token.
PURPOSES = {"open": 1, "click": 2, "unsubscribe": 3, "reason": 4}
_SIGNATURE_BYTES = 12  # 96 bits of HMAC-SHA256: unforgeable, and short links


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    # Keying HMAC hashes the key twice; an email carries a dozen tokens, so key once and copy.
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _mac(secret: str, payload: bytes) -> bytes:
    mac = _keyed(secret).copy()
    mac.update(payload)
    return mac.digest()[:_SIGNATURE_BYTES]


def make_token(secret: str, purpose: str, object_id: int, extra: int = 0) -> str:
    """A token naming `object_id` (and a small `extra` number) for one purpose."""
    payload = struct.pack(">BQI", PURPOSES[purpose], object_id, extra)
    return _b64(payload + _mac(secret, payload))


def read_token(secret: str, purpose: str, token: str) -> tuple[int, int] | None:
    """The `(object_id, extra)` a valid token names, or None for anything altered or foreign."""
    try:
        raw = _unb64(token)
    except (ValueError, TypeError):
        return None
    if len(raw) != 13 + _SIGNATURE_BYTES:
        return None
    payload, signature = raw[:13], raw[13:]
    if not hmac.compare_digest(signature, _mac(secret, payload)):
        return None
    kind, object_id, extra = struct.unpack(">BQI", payload)
    if kind != PURPOSES[purpose]:
        return None
    return object_id, extra
