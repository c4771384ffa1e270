"""`GET /snippet.js` and the committed build: headers, caching, size, freshness, no fingerprinting."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mailer import create_app

STATIC = Path(__file__).resolve().parents[2] / "mailer" / "web" / "static"


@pytest.fixture
def client(settings, database):
    return create_app(settings, database).test_client()


def test_the_snippet_is_served_as_cacheable_javascript_with_an_etag(client) -> None:
    response = client.get("/snippet.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert "max-age=300" in response.headers["Cache-Control"] and "public" in response.headers["Cache-Control"]
    assert response.data == (STATIC / "snippet.js").read_bytes()
    etag = response.headers["ETag"]
    again = client.get("/snippet.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get("/snippet.js", headers={"If-None-Match": '"stale"'}).status_code == 200


def test_the_committed_build_matches_its_source_and_stays_small() -> None:
    built = (STATIC / "snippet.js").read_text()
    source_hash = hashlib.sha256((STATIC / "snippet.src.js").read_bytes()).hexdigest()[:16]
    banner = re.match(r"/\*! mailer snippet \| source sha256:([0-9a-f]{16}) \*/\n", built)
    assert banner, "snippet.js lacks its build banner: run scripts/build-snippet.sh"
    assert banner.group(1) == source_hash, "snippet.src.js changed since the build: run scripts/build-snippet.sh"
    assert len(built.encode()) < 5 * 1024


def test_the_snippet_reads_nothing_that_fingerprints_a_device() -> None:
    source = (STATIC / "snippet.src.js").read_text()
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)  # comments may name what we avoid
    for api in ("canvas", "toDataURL", "getContext", "plugins", "userAgent", "fonts", "screen.", "hardwareConcurrency",
                "deviceMemory", "AudioContext", "WebGL", "platform", "languages"):
        assert api not in code, api
