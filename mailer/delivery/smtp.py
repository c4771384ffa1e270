"""SMTP delivery over one reused connection per thread, with replies mapped to retry or bounce."""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from mailer.delivery.mime import WireMime, starts_a_line_with_dot
from mailer.delivery.transport import Envelope, run_meanwhile
from mailer.errors import ConfigError, DeliveryError, PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

# RCPT TO refusals that say the address itself is bad (mailbox unavailable, user not local,
# mailbox name not allowed): the contact is suppressed as hard-bounced.
HARD_BOUNCE_CODES = frozenset({550, 551, 553})

_ADDRESS = re.compile(r"[^\s<>]+@[^\s<>]+")
_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
# The envelope commands of one message, and the replies that let it go on.
_STAGES = ("MAIL FROM", "RCPT TO", "DATA")
_WANTED: tuple[tuple[int, ...], ...] = ((250,), (250, 251), (354,))
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class SMTPConfig:
    """Where and how to connect, parsed from MAILER_SMTP_URL."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SMTPConfig:
    """Parse `smtp://[user:pass@]host[:port][?starttls=1]` (port 25) or `smtps://…` (port 465)."""
    parts = urlsplit(url)
    shown = _redacted(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(f"SMTP URL must start with smtp:// or smtps://, got {shown!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"SMTP URL has an invalid port: {shown!r}") from exc
    if not parts.hostname:
        raise ConfigError(f"SMTP URL has no host: {shown!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ConfigError(f"SMTP URL has unknown parameters {', '.join(unknown)}: {shown!r}")
    raw_flag = query.get("starttls", ["0"])[-1].lower()
    if raw_flag not in _TRUE | _FALSE:
        raise ConfigError(f"SMTP URL: starttls must be 1 or 0, got {raw_flag!r}")
    implicit_tls = parts.scheme == "smtps"
    starttls = raw_flag in _TRUE
    if implicit_tls and starttls:
        raise ConfigError("SMTP URL: smtps:// is TLS from the start; starttls=1 is for smtp://")
    return SMTPConfig(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _redacted(url: str) -> str:
    """`url` with its password replaced, for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


@dataclass(eq=False, slots=True)
class _Connection:
    """One open SMTP session, owned by the thread (and process) that opened it."""

    smtp: smtplib.SMTP
    pid: int
    thread: threading.Thread
    pipelining: bool = False  # the server advertised PIPELINING (RFC 2920)
    sends: int = 0
    # The next message's envelope, already sent behind the previous message's content, and the
    # server's replies to it; with a 354 among them the server now waits for that content.
    ahead: tuple[Envelope, list[tuple[int, bytes]]] | None = None


class _IdleDrop(Exception):
    """The server closed a reused connection before this message's first command got through."""


class SMTPTransport:
    """Delivers through an SMTP server; each thread keeps and reuses its own connection."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.config = parse_smtp_url(url)
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[_Connection] = []
        # socket.getfqdn() can take seconds on a badly configured host: look it up once.
        self._local_hostname: str | None = None

    @property
    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def send(
        self, envelope: Envelope, data: bytes, *, then: Envelope | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Deliver one message to one recipient, or raise Transient/PermanentDeliveryError.

        `then` is the envelope the caller sends next, if it knows: with PIPELINING its MAIL, RCPT
        and DATA go out behind this message's content (RFC 2920 §3.1), one round trip per message.
        Nothing of it is delivered before its own `send`; a caller that changes its mind costs a
        reconnect. `meanwhile` runs once the content is written, before its reply is read: the
        server's turn (a tenth of the time per email against a local MTA) does the caller's work.
        """
        _check_address(envelope.sender, what="sender", hard_bounce=False)
        _check_address(envelope.recipient, what="recipient", hard_bounce=True)
        if type(data) is not WireMime:  # build_mime's own bytes are known to need neither fix
            data = _dot_stuffed(_with_crlf(data))
        connection = self._connection()
        if connection.ahead is not None and connection.ahead[0] != envelope:
            # The envelope sent ahead is not this one (the caller stopped early): the server may be
            # waiting for its content, so the session is dropped, never fed another message.
            self._discard(connection)
            connection = self._connection()
        try:
            self._transmit(connection, envelope, data, then, meanwhile)
        except _IdleDrop as drop:
            # Servers close idle sessions (timeouts, restarts); nothing of this message was
            # accepted yet, so one retry on a fresh connection cannot send it twice.
            log.info(
                "SMTP connection to %s was closed while idle (%s); reconnecting", self._where, drop
            )
            self._discard(connection)
            # A fresh connection never raises _IdleDrop, so this cannot loop.
            self._transmit(self._connection(), envelope, data, then, meanwhile)

    def close(self) -> None:
        """QUIT this thread's connection and any left by threads that have ended; safe to repeat."""
        mine = getattr(self._local, "connection", None)
        self._local.connection = None
        with self._lock:
            ending = [c for c in self._open if c is mine or not c.thread.is_alive()]
            self._open = [c for c in self._open if c not in ending]
        for connection in ending:
            _quit(connection)

    def close_all(self) -> None:
        """QUIT every thread's connection: only at shutdown, once no thread is sending."""
        self._local.connection = None
        with self._lock:
            ending, self._open = self._open, []
        for connection in ending:
            _quit(connection)

    def __del__(self) -> None:
        # A transport dropped without close() must not leak sockets; no network I/O in a finalizer.
        for connection in getattr(self, "_open", ()):
            connection.smtp.close()

    # --- connections ----------------------------------------------------------------------

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            # After a fork the child inherits the parent's socket: it must open its own.
            if connection.pid == os.getpid() and connection.smtp.sock is not None:
                return connection
            self._discard(connection)
        smtp = self._connect()
        connection = _Connection(smtp, os.getpid(), threading.current_thread(), smtp.has_extn("pipelining"))
        self._local.connection = connection
        with self._lock:
            # Worker pools replace threads; the sessions of ended ones would otherwise stay open.
            orphans = [c for c in self._open if not c.thread.is_alive()]
            self._open = [c for c in self._open if c.thread.is_alive()] + [connection]
        for orphan in orphans:
            _quit(orphan)
        return connection

    def _connect(self) -> smtplib.SMTP:
        """Open, greet, secure and log in; failures here are transient (not the message's fault)."""
        config = self.config
        context = ssl.create_default_context() if config.implicit_tls or config.starttls else None
        smtp: smtplib.SMTP | None = None
        try:
            if config.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    local_hostname=self._local_hostname,
                    timeout=self.timeout,
                    context=context,
                )
            else:
                smtp = smtplib.SMTP(
                    config.host,
                    config.port,
                    local_hostname=self._local_hostname,
                    timeout=self.timeout,
                )
            self._local_hostname = smtp.local_hostname
            smtp.ehlo_or_helo_if_needed()
            if config.starttls:
                smtp.starttls(context=context)
                smtp.ehlo_or_helo_if_needed()
            if config.username is not None:
                smtp.login(config.username, config.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            # Refused greetings, TLS or login problems concern the server or our settings, not
            # this message: retrying later (after the settings are fixed) delivers the backlog.
            if smtp is not None:
                smtp.close()
            code = getattr(exc, "smtp_code", None)
            raise TransientDeliveryError(
                f"cannot open an SMTP session with {self._where}: {exc}", code=code
            ) from exc
        return smtp

    def _discard(self, connection: _Connection) -> None:
        """Forget a broken connection without QUIT (it may be mid-transaction or gone)."""
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            self._open = [c for c in self._open if c is not connection]
        connection.smtp.close()

    # --- one message ----------------------------------------------------------------------

    def _transmit(
        self, connection: _Connection, envelope: Envelope, data: bytes, then: Envelope | None,
        meanwhile: Callable[[], None] | None,
    ) -> None:
        smtp = connection.smtp
        reused = connection.sends > 0
        connection.sends += 1
        replies: list[tuple[int, bytes]] = []
        if connection.ahead is not None:
            # Sent (and answered) behind the previous message's content.
            replies, connection.ahead = connection.ahead[1], None
        else:
            commands = self._commands(smtp, envelope)
            if commands is None:  # the addresses were checked in send: only SMTPUTF8 is missing
                raise PermanentDeliveryError(
                    f"{self._where} does not accept non-ASCII addresses (no SMTPUTF8)", hard_bounce=False
                )
            try:
                self._envelope(connection, commands, replies)
            except smtplib.SMTPServerDisconnected as exc:
                if reused and not replies and not isinstance(exc.__context__, TimeoutError):
                    raise _IdleDrop(str(exc)) from exc
                raise self._lost(connection, exc) from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise self._lost(connection, exc) from exc
            code, reply = replies[0]
            if code == 421 and reused:
                raise _IdleDrop(f"421 {reply.decode('utf-8', 'replace')}")
        for stage, wanted, (code, reply) in zip(_STAGES, _WANTED, replies, strict=False):
            if code not in wanted:
                # A server that said 354 despite refusing the envelope now waits for content:
                # dropping the session (not even a final dot) is the only way to send nothing.
                raise self._refused(connection, stage, code, reply, reusable=replies[-1][0] != 354)
        payload = data + b".\r\n"
        following = self._commands(smtp, then) if then is not None and connection.pipelining else None
        if following is not None:
            payload += b"".join(following)
        # A timeout or drop after the data went out is the one case where the server may have
        # kept the message: it is reported as transient and may be sent again (DESIGN §6).
        try:
            smtp.send(payload)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._lost(connection, exc) from exc
        if meanwhile is not None:
            run_meanwhile(meanwhile)  # only after the write: a _IdleDrop retry never runs it twice
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            raise self._lost(connection, exc) from exc
        if following is not None and then is not None and code != 421:
            self._read_ahead(connection, then, following)
        if code != 250:
            # With an envelope ahead, this transaction is over and the next one started: no RSET.
            raise self._refused(connection, "DATA", code, reply, reset=connection.ahead is None)

    def _commands(self, smtp: smtplib.SMTP, envelope: Envelope) -> tuple[bytes, ...] | None:
        """MAIL, RCPT and DATA for `envelope`, or None when it cannot go (the caller's send reports why)."""
        try:
            _check_address(envelope.sender, what="sender", hard_bounce=False)
            _check_address(envelope.recipient, what="recipient", hard_bounce=True)
        except PermanentDeliveryError:
            return None
        utf8 = not (envelope.sender.isascii() and envelope.recipient.isascii())
        if utf8 and not smtp.has_extn("smtputf8"):
            return None
        # The addresses were checked (no spaces, CR, LF or angle brackets), so the commands are
        # written directly rather than through smtplib's address parsing.
        encoding = "utf-8" if utf8 else "ascii"
        return (
            f"MAIL FROM:<{envelope.sender}>{' SMTPUTF8' if utf8 else ''}\r\n".encode(encoding),
            f"RCPT TO:<{envelope.recipient}>\r\n".encode(encoding),
            b"DATA\r\n",
        )

    def _read_ahead(self, connection: _Connection, then: Envelope, commands: tuple[bytes, ...]) -> None:
        """Read the replies to the envelope sent behind the content; they wait for `then`'s send."""
        replies: list[tuple[int, bytes]] = []
        try:
            for _command in commands:
                replies.append(connection.smtp.getreply())
                if replies[-1][0] == 421:
                    break
        except (smtplib.SMTPException, OSError) as exc:
            # This message's own reply is in; the next one starts afresh on a new connection.
            log.info("SMTP connection to %s lost after a reply (%s); reconnecting for the next", self._where, exc)
            self._discard(connection)
            return
        connection.ahead = (then, replies)

    @staticmethod
    def _envelope(connection: _Connection, commands: tuple[bytes, ...], replies: list[tuple[int, bytes]]) -> None:
        """Send MAIL, RCPT and DATA, appending each reply to `replies`, up to the first refusal.

        With PIPELINING (RFC 2920) the three go in one write and all three replies are read
        (after a refused MAIL the others are refused too); without it, one at a time. A 421
        ends the reading: the server closes the session after it.
        """
        smtp = connection.smtp
        if connection.pipelining:
            smtp.send(b"".join(commands))
            for _command in commands:
                replies.append(smtp.getreply())
                if replies[-1][0] == 421:
                    return
            return
        for command, wanted in zip(commands, _WANTED, strict=True):
            smtp.send(command)
            replies.append(smtp.getreply())
            if replies[-1][0] not in wanted:
                return

    def _lost(self, connection: _Connection, exc: BaseException) -> TransientDeliveryError:
        self._discard(connection)
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return TransientDeliveryError(
                f"SMTP server {self._where} did not answer within {self.timeout:g} s"
            )
        return TransientDeliveryError(f"SMTP connection to {self._where} failed: {exc}")

    def _refused(
        self, connection: _Connection, stage: str, code: int, reply: bytes, *, reusable: bool = True,
        reset: bool = True,
    ) -> DeliveryError:
        """Map a refusal to an error, leaving the connection ready for the next message."""
        text = f"{stage} refused by {self._where}: {code} {reply.decode('utf-8', 'replace')}"
        if code == 421 or not 400 <= code < 600:
            # 421: the server is closing this session; anything else here is a protocol mix-up.
            self._discard(connection)
            return TransientDeliveryError(text, code=code if code > 0 else None)
        if not reusable:
            self._discard(connection)
        elif reset:
            self._reset(connection)
        if code < 500:
            return TransientDeliveryError(text, code=code)
        return PermanentDeliveryError(
            text, code=code, hard_bounce=stage == "RCPT TO" and code in HARD_BOUNCE_CODES
        )

    def _reset(self, connection: _Connection) -> None:
        """RSET after a refusal so the session can carry the next message; drop it if that fails."""
        try:
            code, _reply = connection.smtp.rset()
        except (smtplib.SMTPException, OSError):
            code = -1
        if code != 250:
            self._discard(connection)


def _check_address(address: str, *, what: str, hard_bounce: bool) -> None:
    # smtplib would quietly reinterpret "Name <a@b>" and refuse CR/LF with a ValueError.
    if not _ADDRESS.fullmatch(address):
        raise PermanentDeliveryError(f"invalid {what} address {address!r}", hard_bounce=hard_bounce)


def _with_crlf(data: bytes) -> bytes:
    """`data` with CRLF line ends: bare CR or LF in DATA is refused or misread by servers."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") == crlf and data.count(b"\r") == crlf:
        return data
    return _BARE_LINE_END.sub(b"\r\n", data)


def _dot_stuffed(data: bytes) -> bytes:
    """DATA content (CRLF already) as it goes on the wire: lines starting with "." get another
    (RFC 5321 §4.5.2), and it ends with CRLF, ready for the final ".\r\n"."""
    if starts_a_line_with_dot(data):
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _quit(connection: _Connection) -> None:
    """End a session politely; a connection inherited through fork is only closed, never QUIT.

    Nor is one with an envelope sent ahead: the server may be waiting for content, and would
    take the QUIT for it.
    """
    try:
        if connection.pid == os.getpid() and connection.smtp.sock is not None and connection.ahead is None:
            connection.smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        connection.smtp.close()
