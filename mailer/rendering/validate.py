"""Refuse a broken template when it is saved or previewed, not when it is sent at 3 am."""

from __future__ import annotations

from markupsafe import escape

from mailer.errors import TemplateError
from mailer.rendering.compile import compile_template
from mailer.rendering.context import sample_context, sparse_sample_context
from mailer.rendering.render import render_email
from mailer.rendering.templates import TemplateSource


def validate_template(source: TemplateSource, subject: str | None = None) -> None:
    """Raise TemplateError (naming file and line) unless the template compiles and renders safely.

    In order: the sources parse; the syntax tree holds no sandbox escapes
    (`.__class__`, `|attr('__class__')`, include/import…); the CSS inlines with
    every Jinja tag kept in place; and a trial render in the sandbox succeeds
    both with full sample data and with every optional value missing. The
    rendered email must show the unsubscribe link and the store's postal
    address, in HTML and in text: every marketing email carries both.
    """
    compiled = compile_template(source)
    full = sample_context(template=source.name)
    email = render_email(compiled, subject or "", full)
    render_email(compiled, subject or "", sparse_sample_context(template=source.name))
    store = full["store"]
    required = (
        (full["unsubscribe_url"], "the unsubscribe link ({{ unsubscribe_url }})"),
        (store["postal_address"], "the store's postal address ({{ store.postal_address }})"),
    )
    for value, label in required:
        if str(escape(value)) not in email.html:
            raise TemplateError(f"the HTML must show {label}", template=f"{source.name}.html")
        if value not in email.text:
            raise TemplateError(f"the text must show {label}", template=f"{source.name}.txt")
