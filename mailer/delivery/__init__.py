"""Delivery: the Transport protocol, the SMTP transport and the capture transport for dev/tests."""

from __future__ import annotations

from mailer.config import Settings
from mailer.db import Database
from mailer.delivery.capture import CaptureTransport, get_captured, list_captured
from mailer.delivery.mime import OutgoingEmail, build_mime
from mailer.delivery.smtp import SMTPConfig, SMTPTransport, parse_smtp_url
from mailer.delivery.transport import Envelope, Transport


def transport_from_settings(settings: Settings, database: Database) -> Transport:
    """SMTP when MAILER_SMTP_URL is set, else the capture transport that fills the outbox."""
    if settings.smtp_url:
        return SMTPTransport(settings.smtp_url, timeout=settings.smtp_timeout)
    return CaptureTransport(database)


__all__ = [
    "CaptureTransport",
    "Envelope",
    "OutgoingEmail",
    "SMTPConfig",
    "SMTPTransport",
    "Transport",
    "build_mime",
    "get_captured",
    "list_captured",
    "parse_smtp_url",
    "transport_from_settings",
]
