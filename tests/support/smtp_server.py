"""A loopback SMTP server (aiosmtpd) for tests: records messages, injects refusals and delays."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message the sink accepted, as it came over the wire (dot-unstuffed)."""

    envelope_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage = field(repr=False)


class SMTPSink:
    """An SMTP server on 127.0.0.1 and a free port; use as a context manager.

    Fault injection (thread safe, may change while running):
      sink.fail_rcpt["a@x"] = (550, "5.1.1 no such user")  refuse RCPT TO for that address
      sink.fail_next(2, code=451, command="DATA")           the next 2 DATA (or MAIL) answer 451
      sink.delay_seconds = 2.0                              every EHLO/MAIL/RCPT/DATA waits first
      sink.disconnect_all()                                 drop every open connection, server side

    `pipelining=True` advertises PIPELINING (RFC 2920); aiosmtpd reads commands one line at a
    time, so pipelined ones are simply answered in order. `pipelined_commands` counts the MAIL
    and RCPT commands that arrived with the next command already waiting behind them.
    """

    def __init__(self, *, auth: tuple[str, str] | None = None, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.pipelined_commands = 0
        self.fail_rcpt: dict[str, tuple[int, str]] = {}
        self.delay_seconds: float = 0.0
        self.auth = auth
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._failures: dict[str, deque[str]] = {"MAIL": deque(), "DATA": deque()}
        self._servers: list[SMTP] = []
        self._connections = 0
        self._greetings = 0
        self._quits = 0
        options: dict[str, Any] = {}
        if auth is not None:
            # Loopback only: AUTH without TLS is what the test needs, not a production setting.
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = _Controller(
            self, _Handler(self), hostname="127.0.0.1", port=0, **options
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> SMTPSink:
        """Start listening; the port is known afterwards."""
        self._controller.start()
        with self._lock:
            # The controller's readiness probe was a connection too; tests count theirs only.
            self._connections = 0
            self._servers.clear()
        return self

    def stop(self) -> None:
        """Stop the server, cancelling any delayed replies."""
        self._controller.stop()

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the OS chose."""
        return int(self._controller.port)

    @property
    def url(self) -> str:
        """`smtp://127.0.0.1:PORT`, for SMTPTransport or MAILER_SMTP_URL."""
        return f"smtp://127.0.0.1:{self.port}"

    # --- observations ---------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """The messages received so far, in order."""
        with self._lock:
            return list(self._messages)

    @property
    def connection_count(self) -> int:
        """TCP connections accepted since start()."""
        with self._lock:
            return self._connections

    @property
    def greeting_count(self) -> int:
        """EHLO/HELO commands received since start() (one per SMTP session without STARTTLS)."""
        with self._lock:
            return self._greetings

    @property
    def quit_count(self) -> int:
        """QUIT commands received since start()."""
        with self._lock:
            return self._quits

    @property
    def open_connections(self) -> int:
        """Connections the server side still holds open."""
        with self._lock:
            return sum(1 for server in self._servers if server.transport is not None)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until `count` messages arrived and return them; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} messages within {timeout} s, got {len(self._messages)}"
                    )
                self._arrived.wait(remaining)
            return list(self._messages)

    # --- fault injection ------------------------------------------------------------------

    def fail_next(
        self, n: int, code: int = 451, text: str = "4.3.0 try again later", command: str = "DATA"
    ) -> None:
        """Answer the next `n` DATA (or MAIL) commands with `code text` instead of accepting."""
        if command not in self._failures:
            raise ValueError(f"command must be one of {sorted(self._failures)}")
        with self._lock:
            self._failures[command].extend([f"{code} {text}"] * n)

    def disconnect_all(self) -> None:
        """Close every open connection from the server side, as an idle timeout or restart does."""
        future = asyncio.run_coroutine_threadsafe(self._disconnect_all(), self._controller.loop)
        future.result(timeout=5)

    async def _disconnect_all(self) -> None:
        with self._lock:
            servers = list(self._servers)
        for server in servers:
            if server.transport is not None and not server.transport.is_closing():
                server.transport.close()
        # The sockets close on the loop's next iterations; let them, so a client writing right
        # after this returns finds the connection already gone.
        for _ in range(3):
            await asyncio.sleep(0)

    # --- called from the server thread ----------------------------------------------------

    def _connection_made(self, server: SMTP) -> None:
        with self._lock:
            self._connections += 1
            self._servers.append(server)

    def _greeted(self) -> None:
        with self._lock:
            self._greetings += 1

    def _quit(self) -> None:
        with self._lock:
            self._quits += 1

    def _note_pipelined(self, server: SMTP) -> None:
        # aiosmtpd keeps what it read ahead in its StreamReader: bytes there are the next command.
        reader = getattr(server, "_reader", None)
        if reader is not None and len(getattr(reader, "_buffer", b"")) > 0:
            with self._lock:
                self.pipelined_commands += 1

    def _take_failure(self, command: str) -> str | None:
        with self._lock:
            queue = self._failures[command]
            return queue.popleft() if queue else None

    def _rcpt_failure(self, address: str) -> str | None:
        with self._lock:
            failure = self.fail_rcpt.get(address)
        return f"{failure[0]} {failure[1]}" if failure else None

    def _record(self, envelope: Envelope) -> None:
        data = bytes(envelope.original_content or b"")
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        received = ReceivedMessage(str(envelope.mail_from), list(envelope.rcpt_tos), data, message)
        with self._arrived:
            self._messages.append(received)
            self._arrived.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.auth is not None
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if (login, password) == self.auth:
                with self._lock:
                    self.logins.append(login)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    """aiosmtpd's Controller, bound to an OS-chosen port and reporting each new connection."""

    def __init__(self, sink: SMTPSink, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, server_hostname="sink.test", **kwargs)
        self._sink = sink

    def factory(self) -> SMTP:
        server = super().factory()
        self._sink._connection_made(server)
        return server

    def _trigger_server(self) -> None:
        # aiosmtpd 1.4 connects to self.port to check readiness, so with port=0 it must first
        # learn which port the OS chose (self.server is set before the ready event fires).
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Handler:
    """aiosmtpd hooks that consult the sink for delays and refusals before the defaults."""

    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def _hang(self) -> None:
        if self.sink.delay_seconds > 0:
            await asyncio.sleep(self.sink.delay_seconds)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        await self._hang()
        self.sink._greeted()
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        await self._hang()
        self.sink._greeted()
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sink._quit()
        return "221 Bye"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.sink._note_pipelined(server)
        await self._hang()
        failure = self.sink._take_failure("MAIL")
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.sink._note_pipelined(server)
        await self._hang()
        failure = self.sink._rcpt_failure(address)
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._hang()
        failure = self.sink._take_failure("DATA")
        if failure:
            return failure
        self.sink._record(envelope)
        return "250 2.0.0 OK: queued"
