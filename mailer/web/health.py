"""`GET /healthz`: is the database (and Redis, when configured) answering? In the queued ingest mode, how far behind is the track queue?"""

from __future__ import annotations

from flask import Flask, Response, jsonify
from sqlalchemy import text

from mailer.clock import utcnow
from mailer.ingest.track_queue import queue_status
from mailer.web.database import database, settings


def register_health(app: Flask) -> None:
    """Mount the health check."""

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            with database().transaction() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if settings().redis_url:
            try:
                import redis

                redis.Redis.from_url(settings().redis_url, socket_timeout=2).ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        answer: dict[str, object] = {"status": "ok" if healthy else "error", "checks": checks}
        if settings().queues_tracking and checks["database"] == "ok":  # how far behind applying the snippet's events is
            with database().transaction() as session:
                answer["track_queue"] = queue_status(session, utcnow())
        return jsonify(answer), 200 if healthy else 503
