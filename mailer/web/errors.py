"""Map domain exceptions to HTTP answers in one place: JSON for the API, a page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from mailer.errors import MailerError

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/")) or request.is_json


def register_errors(app: Flask) -> None:
    """Install the error handlers."""

    @app.errorhandler(MailerError)
    def _domain_error(exc: MailerError) -> tuple[Response, int] | tuple[str, int]:
        if _wants_json():
            body: dict[str, object] = {"error": exc.message}
            if exc.details is not None:
                body["details"] = exc.details
            return jsonify(body), exc.status
        return exc.message, exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | tuple[Response, int] | HTTPException:
        if _wants_json():
            return jsonify({"error": exc.description or exc.name}), exc.code or 500
        return exc

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int] | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify({"error": "internal error"}), 500
        return "Internal error", 500
