"""The Transport protocol every way of delivering an email implements, and its Envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who the message goes from and to on the wire (MAIL FROM / RCPT TO), plus bookkeeping."""

    sender: str
    recipient: str
    store_id: int | None = None
    message_id: int | None = None  # the outbox row id, kept by the capture transport
    subject: str = ""  # for the capture outbox list; SMTP reads it from the data


class Transport(Protocol):
    """Hands one finished message to something that delivers it."""

    def send(
        self, envelope: Envelope, data: bytes, *, then: Envelope | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Deliver `data` (CRLF MIME bytes), or raise Transient/PermanentDeliveryError.

        `then`, when given, is the envelope of the message the caller sends next: a transport may
        prepare it (SMTP pipelines its commands), but delivers nothing of it before its own send.
        `meanwhile`, when given, is called once during the send, while the server works on the
        message (SMTP: between writing the content and reading its reply), so the caller's next
        piece of work overlaps the wait. It must not raise; if it does, the error is logged.
        """
        ...

    def close(self) -> None:
        """Release connections; the transport may still be used afterwards."""
        ...


def run_meanwhile(meanwhile: Callable[[], None]) -> None:
    """Call a send's `meanwhile`, logging what it raises: the message's own outcome must not change."""
    try:
        meanwhile()
    except Exception:
        log.exception("the work overlapped with a send failed; the send itself goes on")
