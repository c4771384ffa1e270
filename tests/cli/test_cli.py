"""The `mailer` command as a store's script runs it: a real process, a real database, real SMTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.db import Database
from mailer.models import Store
from tests.support.factories import make_contact, make_order
from tests.support.scenarios import NOW, plan_winback

MAILER = str(Path(sys.executable).with_name("mailer"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment pointing the command at a fresh SQLite file."""
    values = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    values.update({
        "MAILER_ENV": "test",
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MAILER_INSTANCE_DIR": str(tmp_path / "instance"),
        "MAILER_BASE_URL": "https://mail.shop.test",
    })
    return values


def mailer(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([MAILER, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def create_store(env: dict[str, str]) -> dict[str, object]:
    mailer(env, "db", "upgrade")
    out = mailer(env, "store", "create", "--name", "Tea & Co", "--domain", "tea.example", "--timezone", "Europe/Berlin",
                 "--currency", "EUR", "--postal-address", "Teestraße 1, 10115 Berlin", "--json").stdout
    return json.loads(out)


def test_store_and_user_create_print_json(env) -> None:
    store = create_store(env)
    assert set(store) == {"id", "public_key", "secret_key"}
    assert str(store["public_key"]).startswith("pk_") and str(store["secret_key"]).startswith("sk_")
    user = json.loads(mailer(env, "user", "create", "--email", "Owner@Tea.example", "--password", "long-enough",
                             "--role", "owner", "--store", str(store["id"]), "--json").stdout)
    assert user["email"] == "owner@tea.example"


def test_bad_input_gets_a_clear_error_not_a_traceback(env) -> None:
    create_store(env)
    bad_zone = mailer(env, "store", "create", "--name", "X", "--domain", "x.example", "--timezone", "Mars/Olympus", check=False)
    assert bad_zone.returncode == 1 and "unknown time zone" in bad_zone.stderr and "Traceback" not in bad_zone.stderr
    bad_now = mailer(env, "tick", "--now", "yesterday-ish", check=False)
    assert bad_now.returncode == 2 and "ISO 8601" in bad_now.stderr
    bad_template = mailer(env, "send-test", "--store", "1", "--template", "../../etc/passwd", "--to", "a@b.example", check=False)
    assert bad_template.returncode == 1 and "Traceback" not in bad_template.stderr


def test_send_test_delivers_a_complete_marketing_email_to_a_real_smtp_server(env, smtp_sink) -> None:
    store = create_store(env)
    env["MAILER_SMTP_URL"] = smtp_sink.url
    out = json.loads(mailer(env, "send-test", "--store", str(store["id"]), "--template", "cart/step1",
                            "--to", "Marketer@Tea.example", "--json").stdout)
    assert out["to"] == "marketer@tea.example"
    assert len(smtp_sink.messages) == 1
    received = smtp_sink.messages[0]
    message = received.message
    assert received.rcpt_tos == ["marketer@tea.example"]
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["List-Unsubscribe"].startswith("<https://mail.shop.test/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert 'style="' in html and "<style" not in html.split("<body", 1)[1]  # CSS inlined into the body
    for body in (html, text):
        assert "Teestraße 1, 10115 Berlin" in body
        assert "https://mail.shop.test/u/" in body  # the visible unsubscribe link


def test_tick_at_the_same_now_twice_sends_nothing_the_second_time(env, smtp_sink) -> None:
    store_id = int(create_store(env)["id"])  # type: ignore[call-overload]
    database = Database.from_url(env["MAILER_DATABASE_URL"])
    with database.transaction() as session:
        store = session.scalar(select(Store).where(Store.id == store_id))
        people = []
        for _ in range(3):
            person = make_contact(session, store)
            make_order(session, person, NOW - timedelta(days=10))
            people.append(person)
        plan_winback(session, store, people)
    database.dispose()
    env["MAILER_SMTP_URL"] = smtp_sink.url
    first = json.loads(mailer(env, "tick", "--now", NOW.isoformat(), "--json").stdout)
    second = json.loads(mailer(env, "tick", "--now", NOW.isoformat(), "--json").stdout)
    assert (first["sent"], second["sent"]) == (3, 0)
    assert len(smtp_sink.messages) == 3
