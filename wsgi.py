"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from mailer import create_app
from mailer.logs import configure_logging

configure_logging()
app = create_app()
