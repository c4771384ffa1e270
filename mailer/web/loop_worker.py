"""A gunicorn worker that serves the WSGI app from one event loop: keep-alive connections, a C HTTP parser, no threads.

gunicorn's sync worker closes the connection after every request and parses HTTP in Python:
about 0.25 ms of CPU per request on this kind of machine, as much as the pixel's own work. This
worker keeps each client's connection open between requests (up to `--keep-alive` seconds idle),
parses with httptools (llhttp, the parser of Node.js and uvicorn) on uvloop when installed, and
calls the app synchronously on the loop's thread, one request at a time: a request's database
work blocks the loop exactly as it blocks a sync worker, so the app sees the same world (one
request per process at once, no threads) and the master's timeout still kills a stuck worker.
Run it with `gunicorn -k mailer.web.loop_worker.LoopWorker wsgi:app` (gunicorn.conf.py does).

Workers share the connections: each accepts one per turn of its loop, and a connection closes
after REQUESTS_PER_CONNECTION answers so its client reconnects to whichever worker is free (bench
README: without that, one worker could hold all of a burst's connections while the other idled).
A slow request delays the other connections its worker holds, up to that request's time.

The request body is read whole before the app runs (at most MAX_BODY bytes, else 413), and the
response is written whole after the app returns, with a Content-Length when the app gave none:
our responses are small, and a slow client then costs buffer space, not a blocked process.
gunicorn's access log (--access-logfile) is written as its own workers write it.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
from gunicorn.workers.base import Worker

MAX_BODY = 16 * 1024 * 1024  # the largest API body is 1 MB (the app answers 413 above it); webhooks stay far below 16
REQUESTS_PER_CONNECTION = 100  # then "Connection: close": the client reconnects, to whichever worker is free (see _accept_one)
TICK_SECONDS = 0.5  # how often the worker tells the master it lives and checks for shutdown and idle connections
_NO_BODY_STATUSES = (b"1", b"204", b"304")
_STATUS_TEXT = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
                431: "Request Header Fields Too Large", 500: "Internal Server Error"}


class _RequestRefused(Exception):
    """A request this worker answers itself with `status`, then closes the connection."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _HttpDate:
    """The Date header's value, formatted once per second."""

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def now(self) -> bytes:
        """Today's HTTP date, e.g. b'Thu, 26 Nov 2026 10:45:13 GMT'."""
        second = int(time.time())
        if second != self.second:
            self.second, self.value = second, formatdate(second, usegmt=True).encode("latin-1")
        return self.value


class _Connection(asyncio.Protocol):
    """One client connection: parses its requests in order and answers each before reading the next."""

    def __init__(self, worker: LoopWorker, server_address: tuple[str, int]) -> None:
        self.worker = worker
        self.server_name, self.server_port = server_address[0], str(server_address[1])
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer: tuple[str, str] = ("", "")
        self.since = time.monotonic()  # when the request being read started, or else the last answer went out
        self.in_request = False  # between the first byte of a request and its answer
        self.answered = 0
        self.closing = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        """Remember the transport and the peer; count the connection."""
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), str(peer[1]))
        self.worker.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self.worker.connections.discard(self)
        self.worker.connection_closed()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Feed the parser; complete requests are answered from its callbacks, in order."""
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.close()  # WebSocket or h2c: not served; the request itself was answered as a plain one
        except httptools.HttpParserError as error:  # httptools wraps what a callback raises
            refused = error.__context__
            self.refuse(refused.status if isinstance(refused, _RequestRefused) else 400)

    def pause_writing(self) -> None:
        """The client reads slower than we answer: stop reading its requests until it catches up."""
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up: read again."""
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        """A request starts."""
        self.in_request = True
        self.since = time.monotonic()
        self._reset()

    def on_url(self, url: bytes) -> None:
        """A piece of the request target."""
        self.url += url
        limit = self.worker.cfg.limit_request_line
        if limit and len(self.url) > limit:
            raise _RequestRefused(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header (httptools joins a header split across reads)."""
        cfg = self.worker.cfg
        if cfg.limit_request_field_size and len(name) + len(value) > cfg.limit_request_field_size:
            raise _RequestRefused(431)
        self.headers.append((name, value))
        if cfg.limit_request_fields and len(self.headers) > cfg.limit_request_fields:
            raise _RequestRefused(431)

    def on_headers_complete(self) -> None:
        """Refuse a declared body over MAX_BODY before it comes; answer `Expect: 100-continue` so the client sends it."""
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
                raise _RequestRefused(413)
            if lowered == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        """A piece of the body (already de-chunked)."""
        self.body_size += len(body)
        if self.body_size > MAX_BODY:
            raise _RequestRefused(413)
        self.body.append(body)

    def on_message_complete(self) -> None:
        """The request is whole: run the app and write its answer."""
        if self.closing or self.transport is None:
            return  # a request pipelined behind one that closed the connection: never answered
        self.answered += 1
        keep_alive = self.parser.should_keep_alive() and self.answered < REQUESTS_PER_CONNECTION
        response, keep_alive = self.worker.answer(self._environ(), keep_alive, self.headers)
        self.transport.write(response)
        self.in_request = False
        self.since = time.monotonic()
        if not keep_alive:
            self.close()

    # helpers

    def _environ(self) -> dict[str, Any]:
        """The PEP 3333 environ of the request just parsed."""
        parsed = httptools.parse_url(self.url)
        version = self.parser.get_http_version()
        body = b"".join(self.body)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.parser.get_method().decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(parsed.path or b"/").decode("latin-1"),
            "QUERY_STRING": (parsed.query or b"").decode("latin-1"),
            "RAW_URI": self.url.decode("latin-1"),
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": self.server_port,
            "SERVER_PROTOCOL": f"HTTP/{version}",
            "REMOTE_ADDR": self.peer[0],
            "REMOTE_PORT": self.peer[1],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        chunked = False
        for raw_name, raw_value in self.headers:
            if b"_" in raw_name:
                continue  # drop headers spelled with "_": they would pass for the "-" ones (as gunicorn does)
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            if name == "CONTENT_TYPE" or name == "CONTENT_LENGTH":
                environ[name] = value
                continue
            if name == "TRANSFER_ENCODING" and "chunked" in value.lower():
                chunked = True
            key = "HTTP_" + name
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        if chunked:
            environ["CONTENT_LENGTH"] = str(len(body))
        if self.worker.trusts(self.peer[0]) and self.worker.secure_scheme(environ):
            environ["wsgi.url_scheme"] = "https"
        return environ

    def refuse(self, status: int) -> None:
        """Answer a request the app never saw with `status`, then close."""
        if self.transport is not None:
            text = _STATUS_TEXT.get(status, "Bad Request")
            self.transport.write(
                f"HTTP/1.1 {status} {text}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(text)}\r\n\r\n{text}".encode("latin-1"))
        self.close()

    def close(self) -> None:
        """Close once everything written so far has gone out; read nothing more."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class LoopWorker(Worker):
    """gunicorn worker: an asyncio (uvloop when installed) loop serving keep-alive connections, the app called in line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[_Connection] = set()
        self.date = _HttpDate()
        self.listening: list[socket.socket] = []
        self.accepting = False
        self.open_count = 0  # connections accepted and not closed yet (gunicorn's --worker-connections caps it)
        allowed = self.cfg.forwarded_allow_ips
        self._trust_all = "*" in allowed
        self._trusted = frozenset(allowed)
        self._secure_headers = {"HTTP_" + name.upper().replace("-", "_"): value.lower()
                                for name, value in (self.cfg.secure_scheme_headers or {}).items()}

    def init_process(self) -> None:
        """Choose uvloop when installed, then boot as every gunicorn worker does (loads the app, calls run)."""
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency; the standard loop works too
            self.loop = asyncio.new_event_loop()
        else:
            self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        super().init_process()

    def init_signals(self) -> None:
        """gunicorn's handlers, minus its wake-up pipe: the loop's tick notices `alive` turning False."""
        super().init_signals()
        signal.set_wakeup_fd(-1)

    def run(self) -> None:
        """Serve on every listening socket until told to stop, then let open requests finish."""
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        self.listening = [listener.sock for listener in self.sockets]
        for sock in self.listening:
            sock.setblocking(False)
        self._start_accepting()
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
                break
            self._sweep(self.cfg.keepalive)
            await asyncio.sleep(TICK_SECONDS)
        self._stop_accepting()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self.connections and time.monotonic() < deadline:
            self.notify()
            self._sweep(0)
            await asyncio.sleep(0.05)

    def _start_accepting(self) -> None:
        """Take new connections again (at start, and when a connection closes below the cap)."""
        if self.accepting or not self.alive:
            return
        self.accepting = True
        for sock in self.listening:
            address = sock.getsockname()
            self.loop.add_reader(sock.fileno(), self._accept_one, sock,
                                 address if isinstance(address, tuple) else ("localhost", 0))

    def _stop_accepting(self) -> None:
        """Leave new connections to the other workers (or the next one the master starts)."""
        self.accepting = False
        for sock in self.listening:
            self.loop.remove_reader(sock.fileno())

    def connection_closed(self) -> None:
        """A connection closed: below the cap again, accept more."""
        self.open_count -= 1
        if self.open_count < self.cfg.worker_connections:
            self._start_accepting()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: stop accepting at once, finish what is open (gunicorn's graceful stop)."""
        super().handle_exit(sig, frame)
        self.loop.call_soon_threadsafe(self._stop_accepting)

    def _accept_one(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Accept one waiting connection per turn of the loop, so the workers share a burst of them.

        Every worker's loop wakes when a client connects. Accepting all that wait, as asyncio's and
        libuv's servers do, lets the first worker awake take a whole burst (wrk's 8 connections, a
        proxy's pool) and keep it for as long as the connections live, while the other worker idles.
        """
        try:
            client, _ = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        except OSError as error:  # out of file descriptors: leave it waiting, another worker may take it
            self.log.warning("accept failed: %s", error)
            return
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.open_count += 1
        if self.open_count >= self.cfg.worker_connections:
            self._stop_accepting()
        self.loop.create_task(self._connect(client, address))

    async def _connect(self, client: socket.socket, address: tuple[str, int]) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: _Connection(self, address), client)
        except OSError:  # the client left before its transport was made
            client.close()
            self.connection_closed()

    def _sweep(self, idle_seconds: float) -> None:
        """Close connections idle `idle_seconds` since their last answer; answer 408 to requests slower than --timeout.

        A request is read only as its bytes arrive, so a client that stops halfway (or trickles
        bytes on purpose) would hold its connection for ever without the second rule.
        """
        now, request_seconds = time.monotonic(), self.cfg.timeout or float("inf")
        for connection in list(self.connections):
            if connection.in_request:
                if connection.since <= now - request_seconds:
                    connection.refuse(408)
            elif connection.since <= now - idle_seconds:
                connection.close()

    def trusts(self, address: str) -> bool:
        """True when `address` may tell us the scheme (gunicorn's --forwarded-allow-ips)."""
        return self._trust_all or address in self._trusted

    def secure_scheme(self, environ: dict[str, Any]) -> bool:
        """True when a trusted proxy's header says the client came over HTTPS (gunicorn's secure_scheme_headers)."""
        return any(environ.get(key, "").lower() == value for key, value in self._secure_headers.items())

    def answer(self, environ: dict[str, Any], keep_alive: bool,
               request_headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
        """Run the app on `environ`; the whole HTTP response (status line, headers, body) and whether to keep the connection."""
        started = time.perf_counter()
        self.nr += 1
        if self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            self._stop_accepting()
            keep_alive = False
        response = _Response()
        try:
            body = _run_app(self.wsgi, environ, response)
        except Exception:
            self.log.exception("Error handling request %s", environ.get("RAW_URI"))
            response = _Response()
            response.start("500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", "21")])
            body, keep_alive = b"Internal Server Error", False
        # A stop asked for while the app ran, or the app's own "Connection: close", closes this connection.
        keep_alive = keep_alive and self.alive and not response.closes
        head = environ["REQUEST_METHOD"] == "HEAD"
        encoded = response.encode(body, head=head, keep_alive=keep_alive,
                                  http10=environ["SERVER_PROTOCOL"] == "HTTP/1.0", date=self.date.now())
        if self._access_log:
            self._log_access(response, 0 if head else len(body), request_headers, environ, time.perf_counter() - started)
        return encoded, keep_alive

    @property
    def _access_log(self) -> bool:
        # gunicorn 23+ says whether any access log is configured; older ones decide inside log.access.
        return bool(getattr(self.log, "access_log_enabled", True))

    def _log_access(self, response: _Response, sent: int, request_headers: list[tuple[bytes, bytes]],
                    environ: dict[str, Any], seconds: float) -> None:
        """One line in gunicorn's access log (--access-logfile, --access-logformat), as its own workers write."""
        answered = SimpleNamespace(status=response.status, headers=response.headers, sent=sent)
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request_headers]
        self.log.access(answered, headers, environ, timedelta(seconds=seconds))


class _Response:
    """What the app passed to start_response, and what it wrote through write()."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []

    @property
    def closes(self) -> bool:
        """True when the app asked for the connection to close after this response."""
        return any(name.lower() == "connection" and value.lower() == "close" for name, value in self.headers)

    def start(self, status: str, headers: list[tuple[str, str]],
              exc_info: Any = None) -> Callable[[bytes], None]:
        """PEP 3333's start_response (nothing is sent before the app returns, so a later call replaces the first)."""
        if self.status and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        for name, value in headers:  # a CR or LF would let a value start a header or a body of its own
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
                raise ValueError(f"invalid response header {name!r}")
        self.status, self.headers = status, headers
        return self.written.append

    def encode(self, body: bytes, *, head: bool, keep_alive: bool, http10: bool, date: bytes) -> bytes:
        """The response as bytes, with Date, Connection and (unless the app gave one) Content-Length."""
        status = self.status.encode("latin-1")
        lines = [b"HTTP/1.1 ", status, b"\r\nDate: ", date, b"\r\n"]
        has_length = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "connection" or lowered == "transfer-encoding":
                continue  # hop-by-hop: this server decides them
            if lowered == "content-length":
                has_length = True
            lines += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
        no_body = status.startswith(_NO_BODY_STATUSES)
        if not has_length and not no_body and not head:
            lines += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
        if not keep_alive:
            lines.append(b"Connection: close\r\n")
        elif http10:
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        if not head and not no_body:
            lines.append(body)
        return b"".join(lines)


def _run_app(app: Callable[..., Iterable[bytes]], environ: dict[str, Any], response: _Response) -> bytes:
    """Call the WSGI app and return its whole body (what it wrote, then what it returned), closing the iterable."""
    iterable = app(environ, response.start)
    try:
        chunks = list(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    if not response.status:
        raise RuntimeError("the app returned without calling start_response")
    return b"".join(response.written + chunks)
