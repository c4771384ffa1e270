"""CSS inlining: Jinja survives premailer in place, nothing is fetched, and it runs once per version."""

from __future__ import annotations

import logging
import re
import urllib.request

import cssutils
import pytest
import requests
from premailer import Premailer

from mailer.errors import TemplateError
from mailer.rendering import TemplateSource, compile_template, render_email, sample_context
from mailer.rendering.compile import cache_info

CART_ROWS = """{% extends "base.html" %}
{% block content %}
<table class="cart">
  <tbody>
    {% for item in cart.items %}
    <tr class="row">
      <td class="name">{{ item.name }}</td>
      <td class="price">{{ item.line_total|money(cart.currency) }}</td>
    </tr>
    {% endfor %}
    {% if coupon %}
    <tr class="discount"><td>Code</td><td>{{ coupon.code }}</td></tr>
    {% endif %}
    <tr class="total"><td>Total</td><td>{{ cart.total|money(cart.currency) }}</td></tr>
  </tbody>
</table>
<a class="button" href="{{ cart.restore_url }}">Back to your cart</a>
{% endblock %}
"""


def _render(source: TemplateSource, context: dict | None = None) -> str:
    context = context or sample_context(template="cart/step1")
    return render_email(compile_template(source), "Subject", context).html


def _cart_rows(html: str) -> list[str]:
    start = html.index('<table class="cart"')
    table = html[start : html.index("</table>", start)]
    return re.findall(r"<tr[^>]*>.*?</tr>", table, re.DOTALL)


def test_for_loop_makes_one_styled_row_per_item_in_place(make_source) -> None:
    html = _render(make_source(CART_ROWS))
    rows = _cart_rows(html)
    assert [re.search(r'class="(\w+)"', row).group(1) for row in rows] == [
        "row",
        "row",
        "discount",
        "total",
    ]
    assert "Linen Throw Pillow, Sage" in rows[0] and "$76.00" in rows[0]
    assert "Hand-thrown Stoneware Mug" in rows[1] and "$24.50" in rows[1]
    assert "$100.50" in rows[3]
    # base.html's `.cart td` rule, inlined into the looped cells.
    assert all("border-bottom:1px solid #ece7df" in row for row in rows[:2])


def test_if_around_a_row_removes_it_cleanly(make_source) -> None:
    context = sample_context(template="cart/step1")
    context["coupon"] = None
    html = _render(make_source(CART_ROWS), context)
    rows = _cart_rows(html)
    assert [re.search(r'class="(\w+)"', row).group(1) for row in rows] == ["row", "row", "total"]


def test_url_with_ampersand_in_href_is_escaped_exactly_once(make_source) -> None:
    html = _render(make_source(CART_ROWS))
    assert 'href="https://juniper.example/cart/restore?token=7f3a9c&amp;utm_source=email"' in html
    assert "&amp;amp;" not in html


def test_the_inlined_template_keeps_jinja_tags_and_loses_the_style_block(make_source) -> None:
    compiled = compile_template(make_source(CART_ROWS))
    assert "{% for item in cart.items %}" in compiled.inlined_source
    assert '<td class="name" style="' in compiled.inlined_source
    assert ".cart td" not in compiled.inlined_source  # inlined, not left in <style>
    assert "@media (max-width: 620px)" in compiled.inlined_source  # kept for clients that read it


def test_jinja_in_attribute_position_and_unquoted_values_survive(make_source) -> None:
    html = make_source(
        """<!DOCTYPE html><html><head><style>.x { color: red; }</style></head><body>
<p {% if contact.first_name %}class="x"{% endif %} data-id={{ step.index }}>Hi</p>
<a href={{ store.url }}/new?a=1&b=2 title="{{ store.name }}">Shop</a>
</body></html>""",
        text="{{ store.postal_address }} {{ unsubscribe_url }}",
    )
    rendered = _render(html)
    assert '<p class="x" data-id="1" style="color:red">Hi</p>' in re.sub(" +", " ", rendered)
    context = sample_context()
    context["contact"]["first_name"] = None
    assert '<p data-id="1" style="color:red">Hi</p>' in re.sub(" +", " ", _render(html, context))
    assert 'href="https://juniper.example/new?a=1&amp;b=2"' in rendered
    assert 'title="Juniper &amp; Co."' in rendered


def test_a_page_without_doctype_gets_none_added(make_source) -> None:
    source = make_source("<html><body><p>{{ store.name }}</p></body></html>")
    assert _render(source).startswith("<html>")


def test_style_and_stylesheet_links_and_imports_fetch_nothing(
    make_source, monkeypatch, tmp_path
) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"a fetch was attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    # A relative @import would be read from the working directory: make one to be tempted by.
    (tmp_path / "local.css").write_text("p { color: green; }")
    monkeypatch.chdir(tmp_path)
    source = make_source(
        """<!DOCTYPE html><html><head>
<link rel="stylesheet" href="http://fonts.example/remote.css">
<style>
@import url(http://fonts.example/imported.css);
@import "local.css";
p { font-size: 15px; }
</style></head><body><p>{{ store.name }}</p></body></html>"""
    )
    html = _render(source)
    assert '<p style="font-size:15px">' in html
    assert "color: green" not in html and "color:green" not in html
    # Left for the mail client, untouched and unread.
    assert '<link rel="stylesheet" href="http://fonts.example/remote.css">' in html
    assert "http://fonts.example/imported.css" in html


def test_jinja_inside_style_is_refused_with_its_line(make_source) -> None:
    source = make_source('{% extends "base.html" %}{% block content %}<p>x</p>{% endblock %}')
    layout = source.layout_html.replace(
        "body { margin: 0;", "body { color: {{ store.color }}; margin: 0;"
    )
    broken = TemplateSource(source.name, source.html, source.text, layout, source.layout_text)
    with pytest.raises(TemplateError, match="inside <style>") as caught:
        compile_template(broken)
    assert caught.value.template == "base.html"
    assert caught.value.line == layout[: layout.index("{{ store.color }}")].count("\n") + 1


def test_premailer_runs_once_per_version_and_never_per_recipient(make_source, monkeypatch) -> None:
    calls = []
    original = Premailer.transform

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Premailer, "transform", counting)
    source = make_source(CART_ROWS)
    first = compile_template(source)
    again = compile_template(make_source(CART_ROWS))  # an equal source built anew
    assert again is first and len(calls) == 1
    assert cache_info()["hits"] == 1

    def forbidden(self, *args, **kwargs):
        raise AssertionError("premailer ran while rendering")

    monkeypatch.setattr(Premailer, "transform", forbidden)
    for first_name in ("Ana", "Bo", None):
        context = sample_context(template="cart/step1")
        context["contact"]["first_name"] = first_name
        render_email(first, "Hi {{ contact.first_name }}", context)


def test_a_new_version_of_the_step_or_the_layout_is_compiled_again(make_source) -> None:
    source = make_source(CART_ROWS)
    edited_step = TemplateSource(
        source.name,
        source.html.replace("Back to", "Return to"),
        source.text,
        source.layout_html,
        source.layout_text,
    )
    edited_layout = TemplateSource(
        source.name,
        source.html,
        source.text,
        source.layout_html.replace("#f4f1ec", "#eeeeee"),
        source.layout_text,
    )
    edited_text_layout = TemplateSource(
        source.name, source.html, source.text, source.layout_html, source.layout_text + "\nBye"
    )
    versions = {s.version for s in (source, edited_step, edited_layout, edited_text_layout)}
    assert len(versions) == 4
    assert "#eeeeee" in compile_template(edited_layout).inlined_source
    assert "#eeeeee" not in compile_template(source).inlined_source
    assert cache_info()["size"] == 2


def test_css_problems_print_nothing(make_source, capfd) -> None:
    # As in a fresh process, before anything has quietened cssutils' logger.
    cssutils.log.setLevel(logging.INFO)
    source = make_source(
        """<html><head><style>@import url(http://fonts.example/a.css);
p { colr: red; -webkit-text-size-adjust: 100%; mso-line-height-rule: exactly; }
td { width: ; } @font-face { src: url(x.woff) }</style></head>
<body><p>x</p><table><tr><td>y</td></tr></table></body></html>"""
    )
    compile_template(source)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_data_premailer_attributes_raise_no_warning(make_source) -> None:
    source = make_source(
        '<html><head><style data-premailer="keep">p { color: red; }</style></head><body><p>x</p></body></html>'
    )
    assert 'style="color:red"' in compile_template(source).inlined_source


def test_reserved_placeholder_text_is_refused(make_source) -> None:
    with pytest.raises(TemplateError, match="reserved"):
        compile_template(make_source("<p>jinjaph1x</p>"))
