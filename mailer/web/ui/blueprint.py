"""The dashboard's blueprint, shared by its page modules, with its security headers and error pages."""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from werkzeug.exceptions import HTTPException

bp = Blueprint("ui", __name__)

# Scripts only from our own files (no inline script, so injected markup cannot run any); styles
# inline too, because emails shown in sandboxed frames inherit this policy and carry inline CSS;
# images from anywhere, for the same emails.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src * data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


def secure_headers(response: Response) -> Response:
    """Add the dashboard's security headers to a response."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


bp.after_request(secure_headers)


@bp.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> tuple[str, int] | HTTPException:
    """Dashboard errors (403, 404…) as a page of the dashboard rather than a bare one."""
    if exc.code is None or exc.code < 400 or exc.code == 405:
        return exc
    return render_template("ui/error.html", error=exc), exc.code
