"""Snapshot tests: every default template rendered with the sample data, HTML and text."""

from __future__ import annotations

import pytest

from mailer.rendering import (
    compile_template,
    load_template,
    render_email,
    sample_context,
    validate_template,
)
from mailer.rendering.context import sparse_sample_context

DEFAULT_TEMPLATES = [
    "cart/step1",
    "cart/step2",
    "cart/step3",
    "winback/tier1",
    "winback/tier2",
    "winback/tier3",
    "winback/apology",
    "test",
]
SUBJECT = "{{ contact.first_name or 'Hi' }}, a note from {{ store.name }}"


def _file(name: str) -> str:
    return name.replace("/", "__")


@pytest.mark.parametrize("name", DEFAULT_TEMPLATES)
def test_default_template_validates(name: str) -> None:
    validate_template(load_template(name), SUBJECT)


@pytest.mark.parametrize("name", DEFAULT_TEMPLATES)
def test_default_template_matches_snapshot(name: str, snapshot) -> None:
    email = render_email(
        compile_template(load_template(name)), SUBJECT, sample_context(template=name)
    )
    assert email.subject == "Sam, a note from Juniper & Co."
    snapshot(f"{_file(name)}.html", email.html)
    snapshot(f"{_file(name)}.txt", email.text)


@pytest.mark.parametrize("name", DEFAULT_TEMPLATES)
def test_default_template_without_optional_data_matches_snapshot(name: str, snapshot) -> None:
    """No first name, no coupon, no previous order: the email still reads well."""
    context = sparse_sample_context(template=name)
    email = render_email(compile_template(load_template(name)), SUBJECT, context)
    assert email.subject == "Hi, a note from Juniper & Co."
    assert "Hi there," in email.text and "Hi there," in email.html
    assert "None" not in email.text and "None" not in email.html
    snapshot(f"{_file(name)}.sparse.txt", email.text)


@pytest.mark.parametrize("name", DEFAULT_TEMPLATES)
def test_every_default_email_carries_address_and_unsubscribe_link(name: str) -> None:
    context = sample_context(template=name)
    email = render_email(compile_template(load_template(name)), SUBJECT, context)
    assert f'href="{context["unsubscribe_url"]}"' in email.html
    assert "Juniper &amp; Co., 214 Alder Street, Portland, OR 97204, USA" in email.html
    assert email.text.rstrip().endswith(context["unsubscribe_url"])
    assert context["store"]["postal_address"] in email.text


@pytest.mark.parametrize("name", ["cart/step1", "cart/step2", "cart/step3"])
def test_cart_emails_show_each_item_and_link_back_to_the_cart(name: str) -> None:
    context = sample_context(template=name)
    email = render_email(compile_template(load_template(name)), SUBJECT, context)
    for item in context["cart"]["items"]:
        assert f'<a href="{item["url"]}"' in email.html
        assert f'src="{item["image_url"]}"' in email.html
    assert "$76.00" in email.html and "$100.50" in email.html
    # The restore URL's "&" is escaped once in HTML and left alone in text.
    assert (
        'href="https://juniper.example/cart/restore?token=7f3a9c&amp;utm_source=email"'
        in email.html
    )
    assert "https://juniper.example/cart/restore?token=7f3a9c&utm_source=email" in email.text
    percent = context["coupon"]["percent_off"]
    assert f"{percent}%" in email.text and "JUNI-7KQ2M9XH" in email.html
    assert "December 9, 2026" in email.text


@pytest.mark.parametrize(
    ("name", "percent"), [("winback/tier1", 10), ("winback/tier2", 15), ("winback/tier3", 20)]
)
def test_winback_emails_mention_the_last_purchase_and_the_code(name: str, percent: int) -> None:
    email = render_email(
        compile_template(load_template(name)), SUBJECT, sample_context(template=name)
    )
    assert "Waxed Canvas Tote" in email.text
    assert f"{percent}%" in email.html and "JUNI-7KQ2M9XH" in email.text
    assert email.html.count('class="button"') == 1
    assert 'href="https://juniper.example"' in email.html
