"""Per-key rate limits: a burst over the limit gets 429 with Retry-After; other keys are unaffected."""

from __future__ import annotations

from mailer import create_app
from mailer.web.api.ratelimit import Limit, TokenBucketLimiter, use_limiter
from tests.ingest.helpers import identify, make_shop


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucketLimiter(Limit(rate=2, burst=2), clock=clock)
    assert bucket.hit("k") is None and bucket.hit("k") is None
    assert bucket.hit("k") == 0.5
    assert bucket.hit("other") is None
    clock.now += 0.5
    assert bucket.hit("k") is None and bucket.hit("k") is not None


def test_a_burst_over_the_limit_gets_429_while_another_key_goes_on(settings, database) -> None:
    app = create_app(settings, database)
    clock = Clock()
    use_limiter(app, "secret", TokenBucketLimiter(Limit(rate=0.5, burst=3), clock=clock))
    use_limiter(app, "public", TokenBucketLimiter(Limit(rate=0.5, burst=2), clock=clock))
    client = app.test_client()
    busy, calm = make_shop(database, "busy.example"), make_shop(database, "calm.example")
    body = {"batch": [identify("e", "a@b.co")]}

    answers = [client.post("/api/v1/events", json=body, headers=busy.bearer).status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    limited = client.post("/api/v1/events", json=body, headers=busy.bearer)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert "too many requests" in limited.get_json()["error"]
    assert client.post("/api/v1/events", json=body, headers=calm.bearer).status_code == 202
    assert client.get("/api/v1/contacts/a@b.co", headers=busy.bearer).status_code == 429  # one bucket per key

    track = {"key": busy.public_key, **body}
    assert [client.post("/api/v1/track", json=track).status_code for _ in range(3)] == [202, 202, 429]
    clock.now += 2
    assert client.post("/api/v1/events", json=body, headers=busy.bearer).status_code == 202
