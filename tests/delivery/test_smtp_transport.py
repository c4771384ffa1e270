"""SMTPTransport against a real loopback SMTP server: reuse, reconnects and error mapping."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from mailer.config import load_settings
from mailer.db import Database
from mailer.delivery import (
    CaptureTransport,
    Envelope,
    OutgoingEmail,
    SMTPConfig,
    SMTPTransport,
    build_mime,
    parse_smtp_url,
    transport_from_settings,
)
from mailer.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from tests.support.ports import free_port
from tests.support.smtp_server import SMTPSink

SENDER = "shop@store.example"


def mime(recipient: str, n: int = 0) -> bytes:
    outgoing = OutgoingEmail(
        sender=SENDER,
        sender_name="Shop",
        recipient=recipient,
        recipient_name="Ann",
        subject=f"Message {n} — ü",
        html=f"<p>Hello {n}</p>\n.\n",
        text=f"Hello {n}\n.\n",
        message_id=f"<m{n}.s1@mailer.test>",
    )
    return build_mime(outgoing, datetime(2026, 1, 31, tzinfo=UTC))


def envelope(recipient: str) -> Envelope:
    return Envelope(sender=SENDER, recipient=recipient)


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelining"])
def smtp_sink(request: pytest.FixtureRequest) -> Iterator[SMTPSink]:
    """The loopback server, once without PIPELINING and once advertising it: both paths run every test."""
    with SMTPSink(pipelining=request.param) as sink:
        yield sink


@pytest.fixture
def make_transport(smtp_sink: SMTPSink) -> Iterator[Callable[..., SMTPTransport]]:
    """SMTPTransports on the sink, closed (from every thread) after the test."""
    made: list[SMTPTransport] = []

    def make(url: str | None = None, timeout: float = 5.0) -> SMTPTransport:
        transport = SMTPTransport(url or smtp_sink.url, timeout=timeout)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close_all()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- the URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("smtp://mail.example", SMTPConfig("mail.example", 25)),
        ("smtp://mail.example:2525?starttls=1", SMTPConfig("mail.example", 2525, starttls=True)),
        ("smtps://mail.example", SMTPConfig("mail.example", 465, implicit_tls=True)),
        (
            "smtp://user%40x.example:p%3Ass%40@mail.example:587?starttls=true",
            SMTPConfig(
                "mail.example", 587, starttls=True, username="user@x.example", password="p:ss@"
            ),
        ),
        ("smtp://[::1]:25", SMTPConfig("::1", 25)),
    ],
)
def test_parse_smtp_url(url: str, expected: SMTPConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtp://mail.example:notaport",
        "smtp://mail.example?starttls=maybe",
        "smtp://mail.example?tls=1",
        "smtps://mail.example?starttls=1",
    ],
)
def test_bad_smtp_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_smtp_url(url)


def test_config_errors_do_not_show_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_smtp_url("smtp://user:hunter2@mail.example?bogus=1")
    assert "hunter2" not in str(caught.value)


def test_transport_from_settings(tmp_path) -> None:
    database = Database.from_url("sqlite://")
    env = {"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(tmp_path)}
    assert isinstance(transport_from_settings(load_settings(env), database), CaptureTransport)
    smtp = transport_from_settings(
        load_settings(env, smtp_url="smtp://127.0.0.1:2525", smtp_timeout=7.0), database
    )
    assert isinstance(smtp, SMTPTransport)
    assert (smtp.config.port, smtp.timeout) == (2525, 7.0)
    database.dispose()


# --- delivery ------------------------------------------------------------------------------


def test_delivers_many_messages_over_one_connection(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    sent = [mime(f"c{n}@customer.example", n) for n in range(25)]
    for n, data in enumerate(sent):
        transport.send(envelope(f"c{n}@customer.example"), data)

    received = smtp_sink.wait_for(25)
    assert [m.data for m in received] == sent  # byte for byte, dot-stuffing undone
    assert [m.rcpt_tos for m in received] == [[f"c{n}@customer.example"] for n in range(25)]
    assert {m.envelope_from for m in received} == {SENDER}
    assert received[3].message["Subject"] == "Message 3 — ü"
    assert smtp_sink.connection_count == 1
    assert smtp_sink.greeting_count == 1


def test_close_quits_is_idempotent_and_the_transport_reconnects_after(
    smtp_sink: SMTPSink, make_transport
) -> None:
    transport = make_transport()
    transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    transport.close()
    transport.close()
    wait_until(lambda: smtp_sink.open_connections == 0)
    assert smtp_sink.quit_count == 1

    transport.send(envelope("b@customer.example"), mime("b@customer.example"))
    assert len(smtp_sink.wait_for(2)) == 2
    assert smtp_sink.connection_count == 2


def test_each_thread_has_its_own_connection(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for n in range(5):
                transport.send(
                    envelope(f"t{k}.{n}@customer.example"), mime(f"t{k}.{n}@customer.example", n)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(smtp_sink.wait_for(20)) == 20
    assert smtp_sink.connection_count == 4

    # The worker threads are gone: close() from here QUITs the connections they left behind.
    transport.close()
    wait_until(lambda: smtp_sink.open_connections == 0)
    assert smtp_sink.quit_count == 4


def test_reconnects_once_when_the_server_dropped_an_idle_connection(
    smtp_sink: SMTPSink, make_transport, caplog: pytest.LogCaptureFixture
) -> None:
    transport = make_transport()
    transport.send(envelope("a@customer.example"), mime("a@customer.example", 1))
    smtp_sink.disconnect_all()
    wait_until(lambda: smtp_sink.open_connections == 0)

    with caplog.at_level(logging.INFO, logger="mailer.delivery.smtp"):
        transport.send(envelope("b@customer.example"), mime("b@customer.example", 2))
    assert "closed while idle" in caplog.text
    assert [m.rcpt_tos for m in smtp_sink.wait_for(2)] == [
        ["a@customer.example"],
        ["b@customer.example"],
    ]
    assert smtp_sink.connection_count == 2


def test_a_421_to_mail_on_an_idle_connection_also_reconnects(
    smtp_sink: SMTPSink, make_transport
) -> None:
    transport = make_transport()
    transport.send(envelope("a@customer.example"), mime("a@customer.example", 1))
    smtp_sink.fail_next(1, code=421, text="4.4.2 idle too long, closing", command="MAIL")

    transport.send(envelope("b@customer.example"), mime("b@customer.example", 2))
    assert len(smtp_sink.wait_for(2)) == 2
    assert smtp_sink.connection_count == 2


def test_451_on_data_is_transient_and_the_connection_is_kept(
    smtp_sink: SMTPSink, make_transport
) -> None:
    transport = make_transport()
    smtp_sink.fail_next(1, code=451, text="4.3.0 try again later")
    with pytest.raises(TransientDeliveryError) as caught:
        transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    assert caught.value.code == 451
    assert "4.3.0 try again later" in str(caught.value)

    transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    assert len(smtp_sink.wait_for(1)) == 1
    assert smtp_sink.connection_count == 1


@pytest.mark.parametrize("code", [421, 450, 451, 452])
def test_4xx_on_mail_is_transient(smtp_sink: SMTPSink, make_transport, code: int) -> None:
    transport = make_transport()
    smtp_sink.fail_next(1, code=code, text="4.3.2 not now", command="MAIL")
    with pytest.raises(TransientDeliveryError) as caught:
        transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    assert caught.value.code == code
    transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    assert len(smtp_sink.wait_for(1)) == 1


def test_550_for_one_address_is_a_hard_bounce_and_the_next_address_still_goes(
    smtp_sink: SMTPSink, make_transport
) -> None:
    transport = make_transport()
    smtp_sink.fail_rcpt["gone@customer.example"] = (550, "5.1.1 no such user")
    with pytest.raises(PermanentDeliveryError) as caught:
        transport.send(envelope("gone@customer.example"), mime("gone@customer.example"))
    assert (caught.value.code, caught.value.hard_bounce) == (550, True)

    transport.send(envelope("here@customer.example"), mime("here@customer.example"))
    assert [m.rcpt_tos for m in smtp_sink.wait_for(1)] == [["here@customer.example"]]
    assert smtp_sink.connection_count == 1


@pytest.mark.parametrize(
    "code, error, hard_bounce",
    [
        (551, PermanentDeliveryError, True),
        (553, PermanentDeliveryError, True),
        (552, PermanentDeliveryError, False),
        (554, PermanentDeliveryError, False),
        (450, TransientDeliveryError, None),
        (452, TransientDeliveryError, None),
    ],
)
def test_rcpt_refusals(
    smtp_sink: SMTPSink, make_transport, code: int, error: type, hard_bounce: bool | None
) -> None:
    transport = make_transport()
    smtp_sink.fail_rcpt["x@customer.example"] = (code, "refused")
    with pytest.raises(error) as caught:
        transport.send(envelope("x@customer.example"), mime("x@customer.example"))
    assert caught.value.code == code
    if hard_bounce is not None:
        assert caught.value.hard_bounce is hard_bounce


@pytest.mark.parametrize("code", [550, 552, 554])
def test_5xx_on_data_is_permanent_but_not_a_hard_bounce(
    smtp_sink: SMTPSink, make_transport, code: int
) -> None:
    transport = make_transport()
    smtp_sink.fail_next(1, code=code, text="5.7.1 message refused")
    with pytest.raises(PermanentDeliveryError) as caught:
        transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    assert (caught.value.code, caught.value.hard_bounce) == (code, False)
    transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    assert smtp_sink.connection_count == 1


def test_a_hung_server_times_out_as_transient(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport(timeout=0.5)
    transport.send(envelope("a@customer.example"), mime("a@customer.example"))
    smtp_sink.delay_seconds = 5

    started = time.monotonic()
    with pytest.raises(TransientDeliveryError, match="did not answer"):
        transport.send(envelope("b@customer.example"), mime("b@customer.example"))
    assert time.monotonic() - started < 2.0

    # A fresh connection to the still-hung server times out too, at the greeting.
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError):
        transport.send(envelope("b@customer.example"), mime("b@customer.example"))
    assert time.monotonic() - started < 2.0

    smtp_sink.delay_seconds = 0
    transport.send(envelope("c@customer.example"), mime("c@customer.example"))
    assert [m.rcpt_tos for m in smtp_sink.wait_for(2)][-1] == ["c@customer.example"]


def test_connection_refused_is_transient(make_transport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = make_transport(f"smtp://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TransientDeliveryError, match="cannot open an SMTP session"):
        transport.send(envelope("a@customer.example"), mime("a@customer.example"))


def test_login_when_the_url_has_credentials(make_transport) -> None:
    with SMTPSink(auth=("mailer", "s3cr:t@")) as sink:
        good = make_transport(f"smtp://mailer:s3cr%3At%40@127.0.0.1:{sink.port}")
        good.send(envelope("a@customer.example"), mime("a@customer.example"))
        assert len(sink.wait_for(1)) == 1
        assert sink.logins == ["mailer"]

        bad = make_transport(f"smtp://mailer:wrong@127.0.0.1:{sink.port}")
        with pytest.raises(TransientDeliveryError) as caught:
            bad.send(envelope("a@customer.example"), mime("a@customer.example"))
        assert caught.value.code == 535
        good.close()


def test_bare_line_ends_are_sent_as_crlf(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    transport.send(envelope("a@customer.example"), b"Subject: hi\n\nline\r.\n..two dots\nend")
    (received,) = smtp_sink.wait_for(1)
    assert received.data == b"Subject: hi\r\n\r\nline\r\n.\r\n..two dots\r\nend\r\n"


def test_non_ascii_address_uses_smtputf8(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    transport.send(envelope("jürgen@bäckerei.example"), mime("ann@customer.example"))
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["jürgen@bäckerei.example"]


@pytest.mark.parametrize(
    "recipient", ["a@x.example\r\nRCPT TO:<b@y>", "Ann <a@x.example>", "", "no-at-sign"]
)
def test_invalid_recipient_is_a_permanent_hard_bounce(make_transport, recipient: str) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        make_transport().send(envelope(recipient), b"Subject: x\r\n\r\nx\r\n")
    assert caught.value.hard_bounce is True


# --- pipelining (RFC 2920) -----------------------------------------------------------------


@pytest.mark.parametrize("offered", [True, False])
def test_the_envelope_is_pipelined_only_when_the_server_offers_it(make_transport, offered: bool) -> None:
    with SMTPSink(pipelining=offered) as sink:
        transport = make_transport(sink.url)
        for n in range(3):
            transport.send(envelope(f"p{n}@customer.example"), mime(f"p{n}@customer.example", n))
        assert [m.rcpt_tos for m in sink.wait_for(3)] == [[f"p{n}@customer.example"] for n in range(3)]
        # MAIL and RCPT of each message arrived with the next command already behind them.
        assert sink.pipelined_commands == (6 if offered else 0)
        transport.close()


def test_a_pipelined_refusal_is_answered_in_order_and_the_session_goes_on(make_transport) -> None:
    with SMTPSink(pipelining=True) as sink:
        transport = make_transport(sink.url)
        sink.fail_next(1, code=451, text="4.3.2 not now", command="MAIL")
        sink.fail_rcpt["gone@customer.example"] = (550, "5.1.1 no such user")
        with pytest.raises(TransientDeliveryError) as mail_refused:
            transport.send(envelope("a@customer.example"), mime("a@customer.example"))
        with pytest.raises(PermanentDeliveryError) as rcpt_refused:
            transport.send(envelope("gone@customer.example"), mime("gone@customer.example"))
        transport.send(envelope("b@customer.example"), mime("b@customer.example"))
        assert (mail_refused.value.code, rcpt_refused.value.code, rcpt_refused.value.hard_bounce) == (451, 550, True)
        assert [m.rcpt_tos for m in sink.wait_for(1)] == [["b@customer.example"]]
        assert sink.connection_count == 1
        transport.close()


def test_a_server_that_wants_content_after_refusing_the_recipient_gets_none(make_transport) -> None:
    """A broken server answers DATA with 354 although RCPT failed: the session is dropped unsent."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    after_354: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 broken.test ESMTP\r\n")
            lines.readline()  # EHLO
            conn.sendall(b"250-broken.test\r\n250 PIPELINING\r\n")
            for reply in (b"250 ok\r\n", b"550 5.1.1 no such user\r\n", b"354 go ahead\r\n"):
                lines.readline()
                conn.sendall(reply)
            after_354.append(lines.read())  # until the client closes

    server = threading.Thread(target=serve)
    server.start()
    try:
        transport = make_transport(f"smtp://127.0.0.1:{port}")
        with pytest.raises(PermanentDeliveryError) as caught:
            transport.send(envelope("gone@customer.example"), mime("gone@customer.example"))
        assert (caught.value.code, caught.value.hard_bounce) == (550, True)
    finally:
        server.join(timeout=5)
        listener.close()
    assert after_354 == [b""]  # not a byte of the message, not even the final dot


SMTP_SINK = "/usr/sbin/smtp-sink"


@pytest.mark.skipif(not os.access(SMTP_SINK, os.X_OK), reason="Postfix smtp-sink is not installed")
def test_pipelined_delivery_to_postfix_smtp_sink(make_transport, tmp_path) -> None:
    """Postfix's smtp-sink offers PIPELINING: many messages, dot-stuffed bodies, all counted in."""
    port = free_port()
    argv = [SMTP_SINK, "-c"] + (["-u", "postfix"] if os.geteuid() == 0 else []) + [f"127.0.0.1:{port}", "100"]
    log = tmp_path / "smtp-sink.log"
    with open(log, "wb") as out:
        sink = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _accepts(port))
        transport = make_transport(f"smtp://127.0.0.1:{port}")
        for n in range(30):
            following = envelope(f"s{n + 1}@customer.example") if n < 29 else None
            transport.send(envelope(f"s{n}@customer.example"), mime(f"s{n}@customer.example", n), then=following)
        assert transport._local.connection.pipelining  # noqa: SLF001 - the path under test
        transport.close()
        wait_until(lambda: b"mesg=30" in log.read_bytes())
    finally:
        sink.terminate()
        sink.wait(timeout=5)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- the next envelope sent behind the content (`then`) --------------------------------------


def test_each_envelope_can_go_behind_the_previous_content(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    addresses = [f"n{n}@customer.example" for n in range(6)]
    for n, address in enumerate(addresses):
        following = envelope(addresses[n + 1]) if n + 1 < len(addresses) else None
        transport.send(envelope(address), mime(address, n), then=following)
    assert [m.rcpt_tos for m in smtp_sink.wait_for(6)] == [[a] for a in addresses]
    assert smtp_sink.connection_count == 1
    transport.close()
    wait_until(lambda: smtp_sink.quit_count == 1)


def test_refusals_before_and_after_an_envelope_sent_ahead(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    smtp_sink.fail_next(1, code=451, text="4.3.0 try again later")  # the first content
    smtp_sink.fail_rcpt["gone@customer.example"] = (550, "5.1.1 no such user")
    a, gone, b = "a@customer.example", "gone@customer.example", "b@customer.example"
    with pytest.raises(TransientDeliveryError) as first:
        transport.send(envelope(a), mime(a), then=envelope(gone))
    with pytest.raises(PermanentDeliveryError) as second:
        transport.send(envelope(gone), mime(gone), then=envelope(b))
    transport.send(envelope(b), mime(b))
    assert (first.value.code, second.value.code, second.value.hard_bounce) == (451, 550, True)
    assert [m.rcpt_tos for m in smtp_sink.wait_for(1)] == [[b]]
    assert smtp_sink.connection_count == 1


def test_an_envelope_sent_ahead_but_not_followed_delivers_nothing(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    a, b, c = "a@customer.example", "b@customer.example", "c@customer.example"
    transport.send(envelope(a), mime(a), then=envelope(b))
    transport.send(envelope(c), mime(c))  # the caller stopped before b (its lease ran out)
    transport.send(envelope(a), mime(a, 2), then=envelope(b))
    transport.close()  # no QUIT: the server may be waiting for b's content
    wait_until(lambda: smtp_sink.open_connections == 0)
    time.sleep(0.1)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [[a], [c], [a]]
    expected_connections = 2 if smtp_sink.pipelining else 1
    assert smtp_sink.connection_count == expected_connections
    assert smtp_sink.quit_count == (0 if smtp_sink.pipelining else 1)


# --- work overlapped with the server's turn (`meanwhile`) -----------------------------------


def test_meanwhile_runs_once_per_written_content_and_cannot_change_the_outcome(
    smtp_sink: SMTPSink, make_transport, caplog: pytest.LogCaptureFixture
) -> None:
    transport = make_transport()
    calls: list[str] = []
    a, b = "a@customer.example", "b@customer.example"
    transport.send(envelope(a), mime(a), then=envelope(b), meanwhile=lambda: calls.append("a"))

    def breaks() -> None:
        calls.append("b")
        raise OSError("the caller's own work broke")  # not to be taken for a lost connection

    with caplog.at_level(logging.ERROR, logger="mailer.delivery.transport"):
        transport.send(envelope(b), mime(b), meanwhile=breaks)
    assert calls == ["a", "b"]
    assert "the work overlapped with a send failed" in caplog.text
    assert [m.rcpt_tos for m in smtp_sink.wait_for(2)] == [[a], [b]]
    assert smtp_sink.connection_count == 1  # the session went on as if nothing happened


def test_meanwhile_does_not_run_when_no_content_was_written(smtp_sink: SMTPSink, make_transport) -> None:
    transport = make_transport()
    smtp_sink.fail_rcpt["gone@customer.example"] = (550, "5.1.1 no such user")
    calls: list[int] = []
    with pytest.raises(PermanentDeliveryError):
        transport.send(envelope("gone@customer.example"), mime("gone@customer.example"), meanwhile=lambda: calls.append(1))
    assert calls == []
    smtp_sink.fail_next(1, code=451, text="4.3.0 try again later")  # refused after the content
    with pytest.raises(TransientDeliveryError):
        transport.send(envelope("a@customer.example"), mime("a@customer.example"), meanwhile=lambda: calls.append(2))
    assert calls == [2]



def test_build_mime_bytes_with_a_leading_dot_are_still_dot_stuffed(smtp_sink: SMTPSink, make_transport) -> None:
    outgoing = OutgoingEmail(
        sender=SENDER, sender_name="Shop", recipient="a@customer.example", recipient_name="",
        subject="Dots", html="<p>é</p>\n", text="é\n.leading dot\n..two\n", message_id="<d1.s1@mailer.test>",
    )
    data = build_mime(outgoing, datetime(2026, 1, 31, tzinfo=UTC))
    assert b"\r\n.leading dot" in data  # quoted-printable keeps it: not marked wire-ready
    make_transport().send(envelope("a@customer.example"), data)
    assert smtp_sink.wait_for(1)[0].data == data
