"""Validation: broken or hostile templates are refused at save time, naming the file and the line."""

from __future__ import annotations

import pytest

from mailer.errors import TemplateError
from mailer.rendering import (
    TemplateSource,
    compile_template,
    render_email,
    sample_context,
    validate_template,
)
from mailer.rendering.environment import MAX_SOURCE_BYTES

# Line 1 extends, line 2 opens the block; the line under test is line 3.
STEP = '{{% extends "base.html" %}}\n{{% block content %}}\n{}\n<p>{{{{ store.name }}}}</p>\n{{% endblock %}}\n'


def _step(make_source, line: str, **kwargs) -> TemplateSource:
    return make_source(STEP.format(line), **kwargs)


def _refused(source: TemplateSource, subject: str | None = None) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        validate_template(source, subject)
    return caught.value


@pytest.mark.parametrize(
    "line",
    [
        "{{ ''.__class__ }}",
        "{{ x.__class__.__mro__ }}",
        "{{ contact|attr('__class__') }}",
        "{{ contact|attr(name) }}",
        "{{ contact['__class__'] }}",
        "{{ cart.items|map(attribute='__class__')|list }}",
        "{{ cart.items|map('attr', '__dict__')|list }}",
        "{{ '{0.__class__}'.format(contact) }}",
        "{{ contact._private }}",
        "{% include 'other.html' %}",
        "{% import 'macros.html' as m %}",
        "{% if false %}{{ ''.__class__.__base__.__subclasses__() }}{% endif %}",
    ],
)
def test_sandbox_escapes_are_refused_with_file_and_line(make_source, line: str) -> None:
    error = _refused(_step(make_source, line))
    assert error.template == "custom/email.html"
    assert error.line == 3
    assert str(error).startswith("custom/email.html, line 3: ")


def test_a_syntax_error_names_the_file_and_line(make_source) -> None:
    error = _refused(_step(make_source, "{% if contact.first_name %}Hi"))
    assert error.template == "custom/email.html"
    assert error.line is not None and error.line >= 3
    assert "custom/email.html, line" in str(error)


def test_a_syntax_error_in_the_text_part_names_the_text_file(make_source) -> None:
    source = make_source(
        STEP.format("<p>ok</p>"),
        text='{% extends "base.txt" %}\n{% block content %}\nHi {{ contact.first_name }\n{% endblock %}\n',
    )
    error = _refused(source)
    assert (error.template, error.line) == ("custom/email.txt", 3)


def test_a_syntax_error_in_the_layout_names_the_layout(make_source) -> None:
    source = _step(make_source, "<p>ok</p>")
    layout = source.layout_html.replace("<body>", "<body>\n{{ store.name ]}", 1)
    broken = TemplateSource(source.name, source.html, source.text, layout, source.layout_text)
    error = _refused(broken)
    assert error.template == "base.html"
    assert error.line == layout[: layout.index("{{ store.name ]}")].count("\n") + 1


def test_an_unknown_variable_is_refused_with_its_line_after_inlining(make_source) -> None:
    # The layout's <style> block disappears when inlined; the line must still be the step's.
    error = _refused(_step(make_source, "<p>{{ contact.frist_name }}</p>"))
    assert (error.template, error.line) == ("custom/email.html", 3)
    assert "frist_name" in error.message


def test_an_unknown_filter_is_refused(make_source) -> None:
    error = _refused(_step(make_source, "{{ cart.total|monee }}"))
    assert (error.template, error.line) == ("custom/email.html", 3)


def test_optional_data_used_without_a_guard_is_refused(make_source) -> None:
    """Sample data with no coupon is rendered too: `coupon.code` needs an `{% if coupon %}`."""
    error = _refused(_step(make_source, "<p>Use {{ coupon.code }}</p>"))
    assert (error.template, error.line) == ("custom/email.html", 3)


def test_optional_data_with_a_guard_and_fallback_passes(make_source) -> None:
    validate_template(
        _step(
            make_source,
            '<p>Hi {{ contact.first_name or "there" }}{% if coupon %}, use {{ coupon.code }}{% endif %}</p>',
        ),
        "{{ contact.first_name or 'Hi' }}, your cart is waiting",
    )


def test_mutating_the_context_is_refused(make_source) -> None:
    error = _refused(_step(make_source, "{{ cart.items.append(1) }}"))
    assert (error.template, error.line) == ("custom/email.html", 3)
    assert "not allowed" in error.message


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("{% for i in range(1000000) %}{% endfor %}", "too big"),
        (
            "{% for i in range(100000) %}{% for j in range(100) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
            "loop running away",
        ),
        ("{{ 'x' * 100000000 }}", "over the limit"),
        ("{{ 10 ** 100000000 }}", "over the limit"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself"),
    ],
)
def test_runaway_templates_stop_with_a_clear_error(make_source, line: str, words: str) -> None:
    error = _refused(_step(make_source, line))
    assert words in error.message
    assert error.template == "custom/email.html"


def test_a_template_without_unsubscribe_link_is_refused(make_source) -> None:
    source = make_source(
        "<html><body><p>{{ store.name }} {{ store.postal_address }}</p></body></html>"
    )
    error = _refused(source)
    assert "unsubscribe" in error.message


def test_a_text_part_without_postal_address_is_refused(make_source) -> None:
    source = make_source(STEP.format("<p>hi</p>"), text="Hi. Unsubscribe: {{ unsubscribe_url }}")
    error = _refused(source)
    assert error.template == "custom/email.txt" and "postal address" in error.message


def test_an_oversized_source_is_refused(make_source) -> None:
    source = _step(make_source, "<p>" + "x" * MAX_SOURCE_BYTES + "</p>")
    error = _refused(source)
    assert "256 KB limit" in error.message and error.template == "custom/email.html"


def test_subjects_are_validated_and_named(make_source) -> None:
    source = _step(make_source, "<p>ok</p>")
    assert _refused(source, "{{ ''.__class__ }}").template == "subject"
    assert _refused(source, "Hi {{ contact.first_name ").template == "subject"
    assert _refused(source, "{{ contact.frist_name }}").template == "subject"
    validate_template(source, "{{ contact.first_name or 'Hi' }}, your cart is waiting")


def test_subjects_are_one_line_and_not_html_escaped(make_source) -> None:
    compiled = compile_template(_step(make_source, "<p>ok</p>"))
    email = render_email(
        compiled, "{{ store.name }}:\n  {{ cart.items|length }} items\r\nwaiting", sample_context()
    )
    assert email.subject == "Juniper & Co.: 2 items waiting"


def test_render_time_errors_are_template_errors(make_source) -> None:
    compiled = compile_template(_step(make_source, "<p>{{ cart.total|money(cart.currency) }}</p>"))
    context = sample_context()
    context["cart"] = None  # a cart email rendered without a cart: a bug, reported not crashed
    with pytest.raises(TemplateError) as caught:
        render_email(compiled, "Subject", context)
    assert (caught.value.template, caught.value.line) == ("custom/email.html", 3)


def test_non_plain_context_values_are_refused(make_source) -> None:
    compiled = compile_template(_step(make_source, "<p>ok</p>"))

    class Contact:  # an ORM object must never reach a template
        first_name = "Sam"

    context = sample_context()
    context["contact"] = Contact()
    with pytest.raises(TypeError, match=r"context\['contact'\] is a Contact"):
        render_email(compiled, "Subject", context)


def test_a_runtime_error_in_the_text_part_names_its_line(make_source) -> None:
    source = make_source(
        STEP.format("<p>ok</p>"),
        text='{% extends "base.txt" %}\n{% block content %}\n\nHi {{ contact.nickname }}\n{% endblock %}\n',
    )
    error = _refused(source)
    assert (error.template, error.line) == ("custom/email.txt", 4)


def test_a_runtime_error_in_the_layout_names_the_layout_line(make_source) -> None:
    source = _step(make_source, "<p>ok</p>")
    layout = source.layout_html.replace("{{ store.postal_address }}", "{{ store.address }}")
    broken = TemplateSource(source.name, source.html, source.text, layout, source.layout_text)
    error = _refused(broken)
    assert error.template == "base.html"
    assert error.line == layout[: layout.index("{{ store.address }}")].count("\n") + 1
