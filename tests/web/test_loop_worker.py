"""The LoopWorker under a real gunicorn master: HTTP/1.1 as clients speak it, limits, failures, sharing and stopping."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from mailer.db import Database
from mailer.models import Event
from mailer.web.loop_worker import MAX_BODY, REQUESTS_PER_CONNECTION, LoopWorker
from tests.support.factories import make_store
from tests.support.gunicorn import Gunicorn
from tests.support.waiting import wait_until

PROBE = "tests.support.wsgi_probe:app"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """Two LoopWorkers serving the probe app, idle connections closed after 1 s, requests given 3 s."""
    gunicorn = Gunicorn(PROBE, tmp_path_factory.mktemp("gunicorn") / "log", "--keep-alive", "1", "--timeout", "3",
                        workers=2).start()
    yield gunicorn
    gunicorn.stop()


class Response:
    """One HTTP response read off a raw socket."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(reader: Any, *, head: bool = False) -> Response:
    """Read one response (status, headers, a Content-Length body) from a socket's file."""
    status_line = reader.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    return Response(int(status_line.split()[1]), headers, reader.read(length))


def closed_by_server(sock: socket.socket, within: float = 10) -> bool:
    """True when the server closes the connection (EOF) within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_one_connection_carries_many_requests(server: Gunicorn) -> None:
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    answers = []
    for n in range(3):
        client.request("POST", f"/items?n={n}", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
        reply = client.getresponse()
        assert reply.status == 200 and reply.getheader("Connection") is None and reply.getheader("Date")
        answers.append(json.loads(reply.read()))
    client.close()
    assert {tuple(answer["remote"]) for answer in answers} == {tuple(answers[0]["remote"])}  # one client port
    assert [answer["query"] for answer in answers] == ["n=0", "n=1", "n=2"]
    assert answers[0]["body"] == '{"a": 1}' and answers[0]["content_length"] == "8"
    assert answers[0]["content_type"] == "application/json" and answers[0]["protocol"] == "HTTP/1.1"


def test_pipelined_requests_are_answered_in_order(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"".join(f"GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in range(5)))
        reader = sock.makefile("rb")
        assert [read_response(reader).json()["path"] for _ in range(5)] == [f"/{n}" for n in range(5)]


def test_the_environ_is_pep_3333s(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /a%20b%2Fc/%C3%A9?x=%20y&z HTTP/1.1\r\nHost: shop.example:8080\r\nX-Twice: 1\r\n"
                     b"X-Twice: 2\r\nX_Sneaky: 1\r\nX-Forwarded-Proto: https\r\n\r\n")
        echo = read_response(sock.makefile("rb")).json()
    assert echo["path"] == "/a b/c/\u00c3\u00a9"  # percent-decoded bytes, as latin-1 (PEP 3333)
    assert echo["query"] == "x=%20y&z"
    assert echo["headers"]["HTTP_HOST"] == "shop.example:8080"
    assert echo["headers"]["HTTP_X_TWICE"] == "1,2"
    assert "HTTP_X_SNEAKY" not in echo["headers"]  # spelled with "_": it could pass for X-Sneaky
    assert echo["scheme"] == "https"  # 127.0.0.1 is a trusted proxy by default (gunicorn's forwarded_allow_ips)
    assert echo["remote"][0] == "127.0.0.1"


def test_a_chunked_body_reaches_the_app_whole(server: Gunicorn) -> None:
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    client.request("POST", "/chunked", body=iter([b"first,", b"second,", b"third"]), encode_chunked=True,
                   headers={"Transfer-Encoding": "chunked"})
    echo = json.loads(client.getresponse().read())
    client.close()
    assert echo["body"] == "first,second,third" and echo["content_length"] == "18"


def test_expect_100_continue_is_answered_before_the_body(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n" and reader.readline() == b"\r\n"
        sock.sendall(b"hello")
        assert read_response(reader).json()["body"] == "hello"


def test_head_and_204_have_no_body_and_the_connection_goes_on(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"HEAD /page HTTP/1.1\r\nHost: t\r\n\r\nGET /empty HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = sock.makefile("rb")
        head = read_response(reader, head=True)
        assert head.status == 200 and int(head.headers["content-length"]) > 0  # the length a GET would have
        empty = read_response(reader)
        assert empty.status == 204 and "content-length" not in empty.headers
        assert read_response(reader).json()["path"] == "/after"  # no stray body bytes came before it


def test_write_and_the_returned_body_arrive_in_order_with_a_length(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /write HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = read_response(sock.makefile("rb"))
    assert answer.body == b"written, then returned" and answer.headers["content-length"] == "22"


def test_connection_close_closes_after_the_answer(server: Gunicorn) -> None:
    for request in (b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", b"GET /old HTTP/1.0\r\n\r\n",
                    b"GET /closing HTTP/1.1\r\nHost: t\r\n\r\n"):  # the client asks, HTTP/1.0's default, the app asks
        with server.connect() as sock:
            sock.sendall(request)
            answer = read_response(sock.makefile("rb"))
            assert answer.status == 200 and answer.headers["connection"] == "close"
            assert closed_by_server(sock)


def test_http_1_0_keep_alive_is_kept(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reader = sock.makefile("rb")
        assert read_response(reader).headers["connection"] == "keep-alive"
        sock.sendall(b"GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert read_response(reader).json()["path"] == "/2"


def test_an_idle_connection_is_closed_after_the_keep_alive_time(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(sock.makefile("rb"))
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # still open once answered: kept alive for the next request
        sock.setblocking(True)
        assert closed_by_server(sock, within=10)  # then closed, idle past --keep-alive 1


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
], ids=["garbage", "bad-length", "length-and-chunked", "two-lengths", "long-url", "many-headers", "long-header", "declared-too-big"])
def test_a_request_it_cannot_serve_is_answered_and_the_connection_closed(server: Gunicorn, request_bytes: bytes,
                                                                          status: int) -> None:
    with server.connect() as sock:
        sock.sendall(request_bytes)
        answer = read_response(sock.makefile("rb"))
        assert answer.status == status and answer.headers["connection"] == "close"
        assert closed_by_server(sock)


def test_a_chunked_body_over_the_limit_is_refused(server: Gunicorn) -> None:
    chunk = b"x" * (1024 * 1024)
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(MAX_BODY // len(chunk) + 1):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending: that is the point
        try:
            answer = read_response(sock.makefile("rb"))
        except ConnectionResetError:
            return  # the 413 was lost to the reset our unread chunks caused; the connection is closed either way
        assert answer.status == 413


def test_an_app_failure_is_a_500_and_the_worker_goes_on(server: Gunicorn) -> None:
    for path in ("/boom", "/inject"):  # raising, and a header value that would start a header of its own
        with server.connect() as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            answer = read_response(sock.makefile("rb"))
            assert answer.status == 500 and answer.body == b"Internal Server Error"
            assert b"stolen" not in answer.body and "set-cookie" not in answer.headers
            assert closed_by_server(sock)
    with server.connect() as sock:
        sock.sendall(b"GET /still HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock.makefile("rb")).status == 200


def test_a_busy_worker_leaves_new_connections_to_the_other(server: Gunicorn, tmp_path: Path) -> None:
    flag = tmp_path / "serving"
    slow = server.connect()
    slow.sendall(f"GET /slow?seconds=1.5&flag={flag} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    wait_until(flag.exists, 10, "the slow request to be served", interval=0.01)
    busy_pid = int(flag.read_text())
    with server.connect() as fast:
        fast.sendall(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
        echo = read_response(fast.makefile("rb")).json()
    slow.setblocking(False)
    with pytest.raises(BlockingIOError):
        slow.recv(1)  # the slow request is still being served: the fast one was not queued behind it
    slow.setblocking(True)
    assert echo["pid"] != busy_pid
    assert read_response(slow.makefile("rb")).status == 200
    slow.close()


def test_a_request_that_stalls_halfway_gets_a_408(server: Gunicorn) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part of it")
        answer = read_response(sock.makefile("rb"))
        assert answer.status == 408 and answer.headers["connection"] == "close"
        assert closed_by_server(sock)


def test_worker_connections_caps_what_a_worker_holds(tmp_path: Path) -> None:
    gunicorn = Gunicorn(PROBE, tmp_path / "log", "--worker-connections", "2", "--keep-alive", "30").start()
    held = [gunicorn.connect(), gunicorn.connect()]
    try:
        for sock in held:
            sock.sendall(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock.makefile("rb")).status == 200
        with gunicorn.connect() as third:  # the kernel completes the handshake; the worker leaves it waiting
            third.sendall(b"GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
            third.settimeout(0.5)
            with pytest.raises(TimeoutError):
                third.recv(1)
            held.pop().close()
            third.settimeout(10)
            assert read_response(third.makefile("rb")).json()["path"] == "/third"
    finally:
        for sock in held:
            sock.close()
        gunicorn.stop()


def test_a_connection_is_closed_after_its_hundredth_answer(server: Gunicorn) -> None:
    with server.connect() as sock:
        reader = sock.makefile("rb")
        for n in range(1, REQUESTS_PER_CONNECTION + 1):
            sock.sendall(f"GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            answer = read_response(reader)
            assert answer.headers.get("connection") == ("close" if n == REQUESTS_PER_CONNECTION else None)
        assert closed_by_server(sock)


def test_long_lived_connections_end_up_shared_by_the_workers(server: Gunicorn) -> None:
    """However the first accepts fell, reconnections go to the worker that is free: both serve a fair part."""
    served: list[int] = []

    def client() -> None:
        sock, reader = None, None
        for _ in range(250):
            if sock is None:
                sock = server.connect()
                reader = sock.makefile("rb")
            sock.sendall(b"GET /spin?ms=2 HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = read_response(reader)
            served.append(answer.json()["pid"])
            if answer.headers.get("connection") == "close":
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    clients = [threading.Thread(target=client) for _ in range(6)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=60)
    shares = sorted(served.count(pid) / len(served) for pid in set(served))
    assert len(served) == 1500 and len(shares) == 2 and shares[0] > 0.25, shares


def test_one_connection_is_accepted_per_turn_of_the_loop() -> None:
    # On a thread of its own: Playwright's sync API keeps a loop running on the main thread for the session.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(_accept_once_with_three_waiting).result(timeout=30)


def _accept_once_with_three_waiting() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    config = Config()
    worker = LoopWorker(1, os.getpid(), [], None, 30, config, Logger(config))
    worker.loop = asyncio.new_event_loop()
    try:
        listener.setblocking(False)
        worker._accept_one(listener, ("127.0.0.1", 0))
        worker.loop.run_until_complete(asyncio.sleep(0.05))
        assert len(worker.connections) == 1 and worker.open_count == 1
        waiting = [listener.accept()[0] for _ in range(2)]  # the other two were left for another worker
        for sock in waiting:
            sock.close()
    finally:
        for connection in list(worker.connections):
            connection.close()
        worker.loop.run_until_complete(asyncio.sleep(0))
        worker.loop.close()
        worker.tmp.close()
        for client in clients:
            client.close()
        listener.close()


def test_a_graceful_stop_finishes_the_request_in_flight(tmp_path: Path) -> None:
    gunicorn = Gunicorn(PROBE, tmp_path / "log").start()
    flag = tmp_path / "serving"
    with gunicorn.connect() as sock:
        sock.sendall(f"GET /slow?seconds=1&flag={flag} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_until(flag.exists, 10, "the slow request to be served", interval=0.01)
        stopping = threading.Thread(target=gunicorn.stop)
        stopping.start()
        answer = read_response(sock.makefile("rb"))
        assert answer.status == 200 and answer.headers["connection"] == "close"
        stopping.join(timeout=30)
    assert not stopping.is_alive() and "Worker exiting" in (tmp_path / "log").read_text()


def test_the_access_log_is_gunicorns(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    gunicorn = Gunicorn(PROBE, tmp_path / "log", "--access-logfile", str(access), "--access-logformat",
                        '%(h)s "%(r)s" %(s)s %(b)s "%({user-agent}i)s" %({content-type}o)s %(D)s').start()
    try:
        with gunicorn.connect() as sock:
            sock.sendall(b"GET /logged?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1.0\r\n\r\n")
            answer = read_response(sock.makefile("rb"))
            sock.sendall(b"HEAD /logged HTTP/1.1\r\nHost: t\r\n\r\n")
            read_response(sock.makefile("rb"), head=True)
        wait_until(lambda: access.exists() and "HEAD /logged" in access.read_text(), 10, "the HEAD in the access log",
                   interval=0.05)
        lines = [line for line in access.read_text().splitlines() if "/logged" in line]
    finally:
        gunicorn.stop()
    first, head = (re.fullmatch(r'(\S+) "([^"]*)" (\d+) (\d+) "([^"]*)" (\S+) (\d+)', line) for line in lines)
    assert first is not None and head is not None, lines
    address, request, status, sent, agent, content_type, micros = first.groups()
    assert (address, request, status, int(sent)) == ("127.0.0.1", "GET /logged?x=1 HTTP/1.1", "200", len(answer.body))
    assert agent == "probe/1.0" and content_type == "application/json" and int(micros) > 0
    assert head.group(2, 3, 4) == ("HEAD /logged HTTP/1.1", "200", "0")  # a HEAD sends no body


def test_max_requests_restarts_the_worker(tmp_path: Path) -> None:
    gunicorn = Gunicorn(PROBE, tmp_path / "log", "--max-requests", "3").start()  # start() spent one request
    try:
        pids = []
        for _ in range(6):
            with gunicorn.connect() as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                pids.append(read_response(sock.makefile("rb")).json()["pid"])
        assert len(set(pids)) >= 2
    finally:
        gunicorn.stop()


def test_the_mailer_app_serves_the_snippet_the_track_api_and_the_pixel(database_factory, tmp_path: Path) -> None:
    url = database_factory.url()
    database = Database.from_url(url)
    with database.transaction() as session:
        key = make_store(session).public_key
    gunicorn = Gunicorn("wsgi:app", tmp_path / "log", workers=2, env={
        "MAILER_DATABASE_URL": url, "MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path / "instance"),
        "MAILER_BASE_URL": "http://mailer.test", "MAILER_SECRET_KEY": "loop-worker-test-secret-0123456789"}).start()
    try:
        client = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=10)
        client.request("GET", "/snippet.js")
        snippet = client.getresponse()
        assert snippet.status == 200 and b"sendBeacon" in snippet.read()
        beacon = json.dumps({"key": key, "batch": [
            {"id": "loop-1", "type": "track", "event": "product_viewed", "anonymous_id": "a-1",
             "properties": {"sku": "S1"}}]})
        client.request("POST", "/api/v1/track", body=beacon, headers={"Content-Type": "text/plain"})
        tracked = client.getresponse()
        assert tracked.status == 202 and json.loads(tracked.read())["accepted"] == 1
        client.request("GET", "/t/o/not-a-token")
        pixel = client.getresponse()
        assert pixel.status == 200 and pixel.getheader("Content-Type") == "image/gif" and pixel.read()[:3] == b"GIF"
        client.close()
        with database.transaction() as session:
            assert session.query(Event).filter_by(event_id="loop-1").count() == 1
    finally:
        gunicorn.stop()
        database.dispose()


def test_gunicorn_conf_picks_the_loop_worker() -> None:
    settings: dict[str, Any] = {}
    exec((Path(__file__).resolve().parents[2] / "gunicorn.conf.py").read_text(), settings)
    assert settings["worker_class"] == "mailer.web.loop_worker.LoopWorker"
    assert settings["workers"] == os.cpu_count()
