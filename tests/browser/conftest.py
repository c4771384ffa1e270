"""Browser fixtures: the real app and a sample store on two loopback origins, and headless Chromium."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)
from werkzeug.serving import make_server

from mailer import create_app
from mailer.clock import utcnow
from mailer.config import Settings
from mailer.db import Database
from mailer.stores import create_store
from tests.support import ports

ROOT = Path(__file__).resolve().parents[2]
STORE_PAGES = Path(__file__).parent / "store"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TRACK_PATH = "/api/v1/track"
LOADED = "window.mailer && window.mailer.loaded === true"  # the snippet has loaded on the page


@pytest.fixture
def free_port() -> Callable[[], int]:
    """`free_port()`: a loopback port nothing listens on (the 'API is down' test points there)."""
    return ports.free_port


@dataclass(frozen=True)
class Received:
    """One POST to /api/v1/track: what was sent, how (`cors` = fetch, `no-cors` = beacon), the answer."""

    body: Any
    fetch_mode: str
    status: str
    answer: Any


class TrackRecorder:
    """WSGI middleware keeping a copy of every POST to /api/v1/track and of its answer.

    The tests read what the snippet sent, and what the server said about it, without depending
    on how the server applies it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received: list[Received] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != TRACK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        status: list[str] = []

        def remember_status(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        result = self.app(environ, remember_status)
        try:
            answer = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        with self.lock:
            self.received.append(Received(
                _json_or_text(raw), environ.get("HTTP_SEC_FETCH_MODE", ""), status[0] if status else "?",
                _json_or_text(answer),
            ))
        return [answer]

    def events(self) -> list[dict[str, Any]]:
        """Every event received so far, in arrival order."""
        with self.lock:
            return [event for request in self.received for event in request.body.get("batch", [])]

    def refusals(self) -> list[Received]:
        """Requests that did not get a clean 202 (refused, or with rejected events)."""
        with self.lock:
            return [r for r in self.received
                    if not r.status.startswith("202") or not isinstance(r.answer, dict) or r.answer.get("rejected")]


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"text": raw.decode("utf-8", "replace")[:500]}


@dataclass
class MailerServer:
    """The app on its own origin, with the store it tracks for."""

    url: str
    public_key: str
    store_id: int
    database: Database
    recorder: TrackRecorder


@dataclass
class StoreSite:
    """The sample store on a second origin; pages embed the snippet from `snippet_src`."""

    url: str
    snippet_src: str
    key: str
    server: ThreadingHTTPServer = field(repr=False)

    def page_url(self, name: str, snippet_src: str | None = None) -> str:
        """The URL of a store page, optionally embedding the snippet from elsewhere."""
        query = f"?snippet={snippet_src}" if snippet_src else ""
        return f"{self.url}/{name}{query}"


@pytest.fixture
def mailer_server(committed_database: Database, settings: Settings) -> Iterator[MailerServer]:
    """The real app served by werkzeug on 127.0.0.1 in a thread, over committed data."""
    with committed_database.transaction() as session:
        store, _secret = create_store(session, name="Tea & Co", domain="localhost", now=utcnow())
        store_id, public_key = store.id, store.public_key
    recorder = TrackRecorder(create_app(settings, committed_database))
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    # server_close() then waits for requests still running (a beacon sent as the page closes), so
    # none is left holding a database connection when the test's database is disposed.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, name="mailer-app", daemon=True)
    thread.start()
    yield MailerServer(f"http://127.0.0.1:{server.server_port}", public_key, store_id, committed_database, recorder)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _store_handler(site: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            name = parts.path.strip("/") or "index.html"
            page = STORE_PAGES / name
            if "/" in name or not page.is_file():
                self.send_error(404)
                return
            src = parse_qs(parts.query).get("snippet", [site["snippet_src"]])[0]
            body = page.read_text().replace("{{SNIPPET_SRC}}", src).replace("{{KEY}}", site["key"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def fill_a_cart(page: Page, site: StoreSite) -> None:
    """A visitor views a product while anonymous, goes back to the shop and adds a mug and two teas."""
    page.goto(site.page_url("product.html"))
    page.wait_for_function(LOADED)
    page.click("text=Back to the shop")
    page.wait_for_function(LOADED)
    page.click("#add-mug")
    page.click("#add-tea")
    page.click("#add-tea")


@contextmanager
def serve_store_site(mailer_url: str, public_key: str) -> Iterator[StoreSite]:
    """The sample store on another origin (localhost, another port), embedding the snippet from `mailer_url`."""
    src = f"{mailer_url}/snippet.js"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _store_handler({"snippet_src": src, "key": public_key}))
    thread = threading.Thread(target=server.serve_forever, name="store-site", daemon=True)
    thread.start()
    # Served as http://localhost:PORT: the store's domain is `localhost`, so the links in its
    # events (restore_url, item urls) pass the public API's same-domain rule.
    try:
        yield StoreSite(f"http://localhost:{server.server_address[1]}", src, public_key, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def store_site(mailer_server: MailerServer) -> Iterator[StoreSite]:
    """The sample store on another origin, embedding the snippet from the app."""
    with serve_store_site(mailer_server.url, mailer_server.public_key) as site:
        yield site


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API (it runs its own loop: no asyncio loop may be running here)."""
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium; Playwright never downloads a browser here."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/system-deps.sh (make test does)")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    yield launched
    launched.close()


@dataclass
class PageProblems:
    """What a page reported: console errors and warnings, and uncaught exceptions."""

    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies or storage from other tests."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 640})
    yield ctx
    ctx.close()


@pytest.fixture
def watched_page(context: BrowserContext) -> tuple[Page, PageProblems]:
    """A page whose console errors and uncaught exceptions are collected."""
    page = context.new_page()
    problems = PageProblems()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console_errors.append(f"{message.text} @ {message.location.get('url', '')}")
        elif message.type == "warning":
            problems.console_warnings.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    return page, problems


def _wait_until(condition: Callable[[], Any], message: str, timeout: float = 15.0, page: Page | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {message}")
        if page is not None:
            page.wait_for_timeout(100)  # lets Playwright deliver the page's events (console, errors)
        else:
            time.sleep(0.1)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """`wait_until(condition, message, page=None)`: poll until `condition()` is truthy and return it.

    Pass `page` when the condition reads what the page reports: Playwright's sync API delivers
    console messages only while it is called.
    """
    return _wait_until


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Save a screenshot under test-artifacts/ (gitignored) for a person to look at."""

    def take(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
