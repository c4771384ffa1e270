"""A lean MIME builder: one multipart/alternative email as CRLF bytes, ~20x EmailMessage's speed."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

# RFC 5322 recommends 78 characters per header line; 998 is the hard limit.
_SOFT_LIMIT = 78
_HARD_LIMIT = 998
# 45 bytes are 60 base64 characters: "=?utf-8?b?" + 60 + "?=" = 72, within RFC 2047's 75.
_ENCODED_WORD_BYTES = 45

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# An address we can put between <> in a header and in MAIL FROM / RCPT TO without quoting.
_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+", re.ASCII)
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>", re.ASCII)
_FIELD_NAME = re.compile(r"[!-9;-~]+", re.ASCII)
# Printable ASCII, single spaces between words, nothing that parsers would read as an encoded word.
_PLAIN_TEXT = re.compile(r"(?!.*=\?)[!-~]+(?: [!-~]+)*", re.ASCII)
# atext (RFC 5322 §3.2.3) and single spaces: a display name that needs no quoting.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
# Bytes a 7bit body may hold as they are: tab, LF (sent as CRLF) and printable ASCII.
_PLAIN_BYTES = bytes([9, 10, *range(0x20, 0x7F)])
# A 7bit line must stay under 998 characters (RFC 5322 §2.1.1); this leaves room to spare.
_MAX_7BIT_LINE = 990

# Headers build_mime writes itself; an extra header with one of these names would duplicate them.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


class WireMime(bytes):
    """build_mime's bytes when SMTP can send them as they are: CRLF line ends only, and no line
    that starts with "." (so no dot-stuffing). The SMTP transport skips re-checking them, two
    scans of every email (a twentieth of the CPU the send loop spends on one)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """Everything that goes into one rendered email; addresses must be plain ASCII."""

    sender: str
    sender_name: str
    recipient: str
    recipient_name: str
    subject: str
    html: str
    text: str
    message_id: str
    headers: tuple[tuple[str, str], ...] = ()
    reply_to: str | None = None


def build_mime(email: OutgoingEmail, date: datetime) -> bytes:
    """Serialize `email` as multipart/alternative (text, then HTML) with CRLF line ends.

    Each body goes as it is (7bit) when it is plain ASCII with short lines, else quoted-printable
    (see `_body`); the result is a `WireMime` unless some line starts with ".". CR and LF in the
    subject and extra header values become spaces, so no input can start a header of its own;
    display names also have their runs of whitespace collapsed to one space and trimmed, as mail
    clients show them. Bad addresses, Message-IDs or header names raise ValueError.
    """
    if date.tzinfo is None:
        raise ValueError("build_mime needs an aware datetime for the Date header")
    if not _MESSAGE_ID.fullmatch(email.message_id):
        raise ValueError(f"invalid Message-ID {email.message_id!r}: expected <local@domain>")
    # "=_" can never occur in quoted-printable text ("=" is always followed by hex digits or a
    # line break), and a 7bit body holding the boundary is sent quoted-printable instead, so
    # the boundary cannot collide with a body whatever the randomness.
    boundary = "=_" + os.urandom(12).hex()
    lines = [
        _address_header("From", email.sender_name, email.sender),
        _address_header("To", email.recipient_name, email.recipient),
    ]
    if email.reply_to is not None:
        lines.append(_address_header("Reply-To", "", email.reply_to))
    lines.append(_text_header("Subject", email.subject))
    lines.append("Date: " + format_datetime(date))
    lines.append("Message-ID: " + email.message_id)
    lines.append("MIME-Version: 1.0")
    for name, value in email.headers:
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by build_mime itself")
        lines.append(_text_header(name, value))
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    text_encoding, text = _body(email.text, delimiter)
    html_encoding, html = _body(email.html, delimiter)
    # A 7bit body never has a line starting with "." (see _body), a delimiter line starts with
    # "-"; only a quoted-printable body or an extra header's name may.
    dotted = b"\n." in head or (text_encoding != b"7bit" and starts_a_line_with_dot(text)) or (
        html_encoding != b"7bit" and starts_a_line_with_dot(html)
    )
    data = b"".join(
        (
            head,
            delimiter[2:],
            b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ",
            text_encoding,
            b"\r\n\r\n",
            text,
            delimiter,
            b"\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: ",
            html_encoding,
            b"\r\n\r\n",
            html,
            delimiter,
            b"--\r\n",
        )
    )
    return data if dotted else WireMime(data)


def starts_a_line_with_dot(data: bytes) -> bool:
    """True when some line of `data` starts with ".", which SMTP's DATA must dot-stuff."""
    return data.startswith(b".") or b"\n." in data


def _body(body: str, delimiter: bytes) -> tuple[bytes, bytes]:
    """The Content-Transfer-Encoding and CRLF bytes of one body: 7bit when it is safe as it is.

    7bit (RFC 2045 §2.7) needs ASCII, no control characters but tab, lines under 998; we also
    keep quoted-printable for what it protects that 7bit would not: trailing whitespace (some
    relays strip it), "From " at a line start (mbox relays turn it into ">From "), a line
    starting with "." (left to SMTP dot-stuffing otherwise) and the boundary's delimiter. Encoding the typical HTML body as quoted-printable costs twice as much
    and makes it a third bigger ("=" in every attribute becomes "=3D").
    """
    if body.isascii():
        text = _LINE_BREAK.sub("\n", body) if "\r" in body else body
        raw = text.encode("ascii")
        if not (
            raw.translate(None, _PLAIN_BYTES)
            or b" \n" in raw
            or b"\t\n" in raw
            or raw.endswith((b" ", b"\t"))
            or raw.startswith((b"From ", b"."))
            or b"\nFrom " in raw
            or b"\n." in raw
            or delimiter[2:] in raw
            or max(map(len, raw.split(b"\n"))) > _MAX_7BIT_LINE
        ):
            return b"7bit", raw.replace(b"\n", b"\r\n")
    return b"quoted-printable", _quoted_printable(body)


def _quoted_printable(body: str) -> bytes:
    """The body as UTF-8 quoted-printable with CRLF line ends (soft-wrapped at 76 characters)."""
    # Line ends are normalised first: b2a_qp passes a lone CR through, which SMTP must not see.
    text = _LINE_BREAK.sub("\n", body) if "\r" in body else body
    encoded = binascii.b2a_qp(text.encode("utf-8", "replace"), istext=True)
    if b"From " in encoded:
        # Some relays still write mbox files and would turn "From " into ">From ".
        encoded = _FROM_LINE.sub(b"=46rom ", encoded)
    return encoded.replace(b"\n", b"\r\n")


def _one_line(value: str) -> str:
    """`value` with every line break turned into a space: the guard against header injection."""
    if "\r" in value or "\n" in value:
        return _LINE_BREAK.sub(" ", value)
    return value


def _checked_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"invalid email address {address!r}")
    return address


def _address_header(field: str, name: str, address: str) -> str:
    """`Field: Display Name <address>` with the name as atoms, a quoted string or encoded words."""
    address = _checked_address(address)
    name = " ".join(name.split())  # CR/LF too: this is also the header-injection guard here
    if not name:
        return f"{field}: {address}"
    if len(name) <= 60 and _PLAIN_TEXT.fullmatch(name):
        if _ATOMS.fullmatch(name):
            tokens = [name]
        else:
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            tokens = [f'"{escaped}"']
    else:
        tokens = _encoded_words(name)
    return _fold(field, [*tokens, f"<{address}>"])


def _text_header(field: str, value: str) -> str:
    """An unstructured header: plain words when they survive unchanged, else RFC 2047 words."""
    value = _one_line(value)
    if not value:
        return f"{field}: "
    if _PLAIN_TEXT.fullmatch(value):
        # Folding replaces a space by CRLF + space, and unfolding undoes exactly that.
        folded = _fold(field, value.split(" "))
        if all(len(line) <= _HARD_LIMIT for line in folded.split("\r\n")):
            return folded
    return _fold(field, _encoded_words(value))


def _encoded_words(value: str) -> list[str]:
    """RFC 2047 base64 encoded words, each holding whole characters and at most 45 bytes."""
    words: list[str] = []
    chunk: list[bytes] = []
    size = 0
    for char in value:
        encoded = char.encode("utf-8", "replace")
        if size + len(encoded) > _ENCODED_WORD_BYTES:
            words.append(_encoded_word(b"".join(chunk)))
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    if chunk:
        words.append(_encoded_word(b"".join(chunk)))
    return words


def _encoded_word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def _fold(field: str, tokens: list[str]) -> str:
    """Join `tokens` with spaces after `Field:`, folding before a space past 78 characters."""
    lines: list[str] = []
    line = field + ":"
    started = False
    for token in tokens:
        # Never fold before an empty token: a whitespace-only continuation line is illegal.
        if started and token and len(line) + 1 + len(token) > _SOFT_LIMIT:
            lines.append(line)
            line = ""
        line += " " + token
        started = True
    lines.append(line)
    return "\r\n".join(lines)
