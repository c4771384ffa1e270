"""One database session per request; the request is the transaction."""

from __future__ import annotations

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.db import Database


def register_database(app: Flask, database: Database | None) -> None:
    """Attach the Database and commit each request's session when the response is a success."""
    settings: Settings = app.extensions["mailer_settings"]
    app.extensions["mailer_db"] = database or Database.from_url(settings.database_url)

    @app.after_request
    def _commit(response: Response) -> Response:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:  # the view raised: nothing it did is kept
            session.rollback()
            session.close()


def db_session() -> Session:
    """The current request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = database().session()
    return g.db_session


def database() -> Database:
    """The app's Database."""
    return current_app.extensions["mailer_db"]


def settings() -> Settings:
    """The app's Settings."""
    return current_app.extensions["mailer_settings"]
