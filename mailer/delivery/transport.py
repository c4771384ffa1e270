"""The Transport protocol every way of delivering an email implements, and its Envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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

    def send(self, envelope: Envelope, data: bytes, *, then: Envelope | None = None) -> None:
        """Deliver `data` (CRLF MIME bytes), or raise Transient/PermanentDeliveryError.

        `then`, when given, is the envelope of the message the caller sends next: a transport may
        prepare it (SMTP pipelines its commands), but delivers nothing of it before its own send.
        """
        ...

    def close(self) -> None:
        """Release connections; the transport may still be used afterwards."""
        ...
