"""build_mime output parsed back by the stdlib: every header and both bodies round-trip."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.delivery.mime import OutgoingEmail, WireMime, build_mime

DATE = datetime(2026, 1, 31, 10, 15, 30, tzinfo=UTC)


def make_email(**overrides: object) -> OutgoingEmail:
    values: dict[str, object] = {
        "sender": "shop@store.example",
        "sender_name": "The Shop",
        "recipient": "ann@customer.example",
        "recipient_name": "Ann Smith",
        "subject": "We miss you",
        "html": "<p>Hello</p>\n",
        "text": "Hello\n",
        "message_id": "<m123.s4@mailer.example>",
    }
    values.update(overrides)
    return OutgoingEmail(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The decoded text and HTML parts, with the wire's CRLF line ends read back as LF."""
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text["Content-Transfer-Encoding"] in ("7bit", "quoted-printable")
    assert html["Content-Transfer-Encoding"] in ("7bit", "quoted-printable")
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def one_line(value: str) -> str:
    """What build_mime promises to make of a header value: line breaks become spaces."""
    return re.sub(r"\r\n|\r|\n", " ", value)


def display_name(message: EmailMessage, field: str) -> str:
    """The display name of a one-address header, decoded as RFC 2047 §6.2 says."""
    raw = dict(message.raw_items())[field]
    if raw.count("=?") > 1:
        # CPython before 3.14 puts a space between adjacent encoded words in a display name
        # (gh-128110); RFC 2047 says the whitespace between them is to be ignored.
        return str(make_header(decode_header(raw.rsplit("<", 1)[0].strip())))
    (address,) = message[field].addresses
    return address.display_name


def name_line(value: str) -> str:
    """What build_mime makes of a display name: whitespace runs become one space, trimmed."""
    return " ".join(value.split())  # any Unicode whitespace


def assert_wire_format(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) < 998
    data.decode("ascii")  # 7-bit: no SMTPUTF8 or 8BITMIME needed


def assert_round_trip(outgoing: OutgoingEmail) -> EmailMessage:
    data = build_mime(outgoing, DATE)
    assert_wire_format(data)
    message = parse(data)
    assert not message.defects
    assert message.get_content_type() == "multipart/alternative"
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == outgoing.message_id
    assert message["Date"].datetime == DATE
    assert message["Subject"] == one_line(outgoing.subject)
    (sender,) = message["From"].addresses
    assert sender.addr_spec == outgoing.sender
    assert display_name(message, "From") == name_line(outgoing.sender_name)
    (recipient,) = message["To"].addresses
    assert recipient.addr_spec == outgoing.recipient
    assert display_name(message, "To") == name_line(outgoing.recipient_name)
    for name, value in outgoing.headers:
        assert message[name] == one_line(value)
    text, html = bodies(message)
    assert text == re.sub(r"\r\n|\r", "\n", outgoing.text)
    assert html == re.sub(r"\r\n|\r", "\n", outgoing.html)
    return message


def test_plain_ascii_email_round_trips() -> None:
    message = assert_round_trip(make_email())
    assert list(message.keys())[:7] == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    ]


def test_non_ascii_names_subject_and_bodies() -> None:
    assert_round_trip(
        make_email(
            sender_name="Bäckerei Müller",
            recipient_name="山田 太郎 😀",
            subject="Ihr Warenkorb wartet 🛒 — 日本語の件名 ü",
            text="Grüße aus München 🥨\n日本\n",
            html="<p>Grüße 🥨 日本</p>",
        )
    )


def test_names_with_specials_are_quoted() -> None:
    message = assert_round_trip(
        make_email(
            sender_name='Shop, "The Best" Inc.', recipient_name="O'Brien, Ann (VIP) \\ <x@y>"
        )
    )
    assert '"Shop, \\"The Best\\" Inc."' in message["From"]


def test_empty_names_give_bare_addresses() -> None:
    data = build_mime(make_email(sender_name="", recipient_name=""), DATE)
    assert b"\r\nTo: ann@customer.example\r\n" in data
    assert_round_trip(make_email(sender_name="", recipient_name=""))


def test_long_subject_is_folded() -> None:
    subject = " ".join(["word"] * 60)
    data = build_mime(make_email(subject=subject), DATE)
    assert max(len(line) for line in data.split(b"\r\n")) <= 78 or b"quoted" in data
    assert_round_trip(make_email(subject=subject))
    assert_round_trip(make_email(subject="ü" + "x" * 500))
    assert_round_trip(make_email(subject="y" * 2000))


def test_long_lines_and_mbox_and_smtp_traps_in_bodies() -> None:
    text = (
        "x" * 5000
        + "\n.\n.leading dot\n..\nFrom the shop\nFrom\nline with trailing space \n\ttab\t\n=3D\n"
    )
    html = "<table>" + "<td>€</td>" * 2000 + "</table>\n.\nFrom x"
    data = build_mime(make_email(text=text, html=html), DATE)
    assert b"\r\nFrom " not in data
    assert b"\r\n.\r\n" not in data  # a lone dot would end the SMTP DATA phase early
    assert_round_trip(make_email(text=text, html=html))


def encodings(data: bytes) -> tuple[str, str]:
    text, html = parse(data).iter_parts()
    return text["Content-Transfer-Encoding"], html["Content-Transfer-Encoding"]


def test_plain_ascii_bodies_go_as_they_are() -> None:
    html = '<p style="color:#333">Hello <a href="https://x.example/?a=1&amp;b=2">there</a></p>\n' * 40
    data = build_mime(make_email(text="Hello,\n\tsee you = soon\n", html=html), DATE)
    assert encodings(data) == ("7bit", "7bit")
    assert html.replace("\n", "\r\n").encode() in data
    assert_round_trip(make_email(text="Hello,\n\tsee you = soon\n", html=html))


@pytest.mark.parametrize(
    "body",
    [
        "Grüße\n",  # not ASCII
        "x" * 991 + "\n",  # a line too long for 7bit
        "trailing space \nnext\n",
        "trailing tab\t",
        "From the shop\n",
        "hi\nFrom the shop\n",
        ".\n",
        "a\n.leading dot\n",
        "bell \x07 and NUL \x00\n",
    ],
)
def test_bodies_7bit_cannot_carry_safely_are_quoted_printable(body: str) -> None:
    data = build_mime(make_email(text=body, html="<p>plain</p>"), DATE)
    assert encodings(data) == ("quoted-printable", "7bit")
    assert_round_trip(make_email(text=body, html="<p>plain</p>"))


def test_a_7bit_body_holding_the_boundary_is_quoted_printable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailer.delivery.mime.os.urandom", lambda n: bytes(n))
    boundary = "=_" + bytes(12).hex()
    body = f"see\n--{boundary}\n"
    data = build_mime(make_email(text=body), DATE)
    assert encodings(data)[0] == "quoted-printable"
    assert_round_trip(make_email(text=body))


def test_bare_cr_and_crlf_in_bodies_become_crlf_on_the_wire() -> None:
    assert_round_trip(make_email(text="a\rb\r\nc\nd", html="<p>\r\n</p>\r"))


def test_subject_injection_does_not_create_a_header() -> None:
    outgoing = make_email(
        subject="Hi\r\nBcc: victim@evil.example",
        sender_name="Shop\r\nBcc: a@evil.example",
        recipient_name="Ann\nX-Injected: 1",
        headers=(("X-Mailer-Message", "42\r\nBcc: b@evil.example"),),
    )
    message = assert_round_trip(outgoing)
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert message["Subject"] == "Hi Bcc: victim@evil.example"


@pytest.mark.parametrize(
    "field, value",
    [
        ("sender", "a@b.example\r\nBcc: x@y"),
        ("recipient", "Ann <ann@x.example>"),
        ("recipient", "no-at-sign"),
        ("reply_to", "a@b, c@d"),
        ("message_id", "<id@x>\r\nBcc: x@y"),
        ("message_id", "no-brackets@x"),
    ],
)
def test_invalid_addresses_and_message_ids_are_rejected(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        build_mime(make_email(**{field: value}), DATE)


@pytest.mark.parametrize(
    "name", ["Bcc", "subject", "Content-Type", "X Bad", "X-Bad:", "X-\r\nBcc", ""]
)
def test_invalid_or_reserved_extra_header_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        build_mime(make_email(headers=((name, "v"),)), DATE)


def test_naive_date_is_rejected() -> None:
    with pytest.raises(ValueError):
        build_mime(make_email(), datetime(2026, 1, 1))


def test_date_keeps_its_offset() -> None:
    local = DATE.astimezone(timezone(timedelta(hours=-5)))
    message = parse(build_mime(make_email(), local))
    assert message["Date"].datetime == local
    assert str(message["Date"]).endswith("-0500")


def test_extra_headers_and_reply_to() -> None:
    headers = (
        (
            "List-Unsubscribe",
            "<https://mailer.example/u/"
            + "t" * 120
            + ">, <mailto:unsub@mailer.example?subject=u42>",
        ),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("X-Mailer-Message", "123"),
    )
    message = assert_round_trip(make_email(headers=headers, reply_to="help@store.example"))
    assert message["Reply-To"].addresses[0].addr_spec == "help@store.example"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_boundary_is_random_and_never_in_a_body() -> None:
    first = parse(build_mime(make_email(), DATE)).get_boundary()
    second = parse(build_mime(make_email(), DATE)).get_boundary()
    assert first != second
    # A body that quotes a boundary verbatim still cannot end its part.
    assert_round_trip(make_email(text=f"--{first}\n--{first}--\n"))


# Unicode without surrogates (they cannot be encoded) and with every control character.
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
names = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(subject=texts, sender_name=names, recipient_name=names, text=texts, html=texts, header=texts)
def test_random_unicode_round_trips(
    subject: str, sender_name: str, recipient_name: str, text: str, html: str, header: str
) -> None:
    outgoing = make_email(
        subject=subject,
        sender_name=sender_name,
        recipient_name=recipient_name,
        text=text,
        html=html,
        headers=(("X-Campaign", header),),
    )
    assert_round_trip(outgoing)


def needs_no_smtp_fixing(data: bytes) -> bool:
    """CRLF line ends only and no line starting with "." (what WireMime promises the transport)."""
    bare = re.search(rb"\r(?!\n)|(?<!\r)\n", data)
    return bare is None and not data.startswith(b".") and b"\n." not in data


def test_build_mime_marks_bytes_smtp_can_send_as_they_are() -> None:
    plain = build_mime(make_email(text="Hello\n.\n", html="<p>x</p>\n"), DATE)  # a lone dot: QP "=2E"
    assert type(plain) is WireMime and needs_no_smtp_fixing(plain)
    # Quoted-printable keeps a dot that starts a longer line: that email is left to dot-stuffing.
    dotted = build_mime(make_email(text="é\n.leading dot\n"), DATE)
    assert type(dotted) is bytes and b"\r\n.leading dot" in dotted
    assert_round_trip(make_email(text="é\n.leading dot\n"))


@settings(max_examples=300, deadline=None)
@given(text=texts, html=texts, name=names)
def test_wire_mime_is_never_wrong(text: str, html: str, name: str) -> None:
    data = build_mime(make_email(text=text, html=html, recipient_name=name), DATE)
    if type(data) is WireMime:
        assert needs_no_smtp_fixing(data)
    else:
        assert data.startswith(b".") or b"\n." in data
