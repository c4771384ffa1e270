"""Dashboard logins: password check, the session cookie, CSRF tokens and the login_required guard."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from mailer.models import Store, User
from mailer.stores import check_password
from mailer.web.database import db_session
from mailer.web.ui.blueprint import secure_headers

F = TypeVar("F", bound=Callable[..., Any])
bp = Blueprint("auth", __name__)
bp.after_request(secure_headers)


def csrf_token() -> str:
    """The session's CSRF token (created on first use), for every form."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


def check_csrf() -> None:
    """Refuse a state-changing request without the session's CSRF token."""
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
        abort(400, "missing or wrong CSRF token; reload the page and try again")


def load_user() -> None:
    """Put the logged-in user and their store on `g` (or None)."""
    g.user = None
    g.store = None
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = db_session().get(User, user_id)
    if user is None:
        session.clear()
        return
    g.user = user
    g.store = db_session().get(Store, user.store_id)


def login_required(func: F) -> F:
    """Send anonymous visitors to the login page; check CSRF on every POST."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        if request.method == "POST":
            check_csrf()
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def owner_required(func: F) -> F:
    """Like login_required, and refuse (403) a logged-in marketer: keys and costs are the owner's."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is not None and g.user.role != "owner":
            abort(403, "only the store's owner may do this")
        return func(*args, **kwargs)

    return login_required(wrapper)  # type: ignore[return-value]


def is_owner() -> bool:
    """True when the logged-in user is the store's owner (templates hide owner-only parts otherwise)."""
    user = g.get("user")
    return user is not None and user.role == "owner"


def _safe_next(target: str | None) -> str:
    # Only local paths: a login link must never bounce the user to another site.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui.report")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; a wrong email or password gets one message, not which one was wrong."""
    error = None
    if request.method == "POST":
        check_csrf()
        email = (request.form.get("email") or "").strip().lower()
        password = request.form.get("password") or ""
        user = db_session().scalar(select(User).where(User.email == email).order_by(User.id).limit(1))
        if user is not None and check_password(user.password_hash, password):
            session.clear()
            session["user_id"] = user.id
            session["csrf"] = secrets.token_urlsafe(24)
            return redirect(_safe_next(request.args.get("next")))
        error = "That email and password do not match."
    return render_template("ui/login.html", error=error), 200 if error is None else 401


@bp.post("/logout")
def logout() -> Any:
    """End the session."""
    check_csrf()
    session.clear()
    return redirect(url_for("auth.login"))
