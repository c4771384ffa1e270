"""Attach the settings to the Flask app."""

from __future__ import annotations

from flask import Flask

from mailer.config import Settings, load_settings


def register_settings(app: Flask, settings: Settings | None) -> None:
    """Load settings (unless given) and configure Flask from them."""
    settings = settings or load_settings()
    app.extensions["mailer_settings"] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        TESTING=settings.env == "test",
    )
