"""Render one email for one recipient from a compiled template: Jinja only, never premailer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from mailer.errors import TemplateError
from mailer.rendering.compile import CompiledTemplate
from mailer.rendering.context import check_context
from mailer.rendering.environment import MAX_SUBJECT_CHARS, TEXT_ENV, build, run

SUBJECT_NAME = "subject"
# The subject's source, not its output: enough for any sane subject and its Jinja.
MAX_SUBJECT_SOURCE_CHARS = 2000


@dataclass(frozen=True)
class RenderedEmail:
    """What one recipient gets: subject line, HTML body, plain-text body."""

    subject: str
    html: str
    text: str


def _subject_origin(line: int | None) -> tuple[str, int | None]:
    return SUBJECT_NAME, line


@lru_cache(maxsize=512)
def compile_subject(subject: str) -> jinja2.Template:
    """A subject line compiled in the text sandbox (no HTML escaping in a header), cached by its text."""
    if len(subject) > MAX_SUBJECT_SOURCE_CHARS:
        raise TemplateError(
            f"the subject is {len(subject)} characters, over the {MAX_SUBJECT_SOURCE_CHARS} limit",
            template=SUBJECT_NAME,
        )
    return build(TEXT_ENV, subject, SUBJECT_NAME, _subject_origin)


def render_subject(subject: str, context: Mapping[str, Any]) -> str:
    """Render a subject line: one line, whitespace collapsed, at most 998 characters."""
    text = run(compile_subject(subject), context, filename=SUBJECT_NAME, where=_subject_origin)
    line = " ".join(text.split())  # a newline in a header would end it
    if len(line) > MAX_SUBJECT_CHARS:
        line = line[: MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    return line


def render_email(
    compiled: CompiledTemplate, subject: str, context: Mapping[str, Any]
) -> RenderedEmail:
    """Render subject, HTML and text for one recipient; raises TemplateError if the template fails."""
    check_context(dict(context))
    return RenderedEmail(
        subject=render_subject(subject, context),
        html=run(
            compiled.html, context, filename=compiled.html_filename, where=compiled.html_origin
        ),
        text=run(
            compiled.text, context, filename=compiled.text_filename, where=compiled.text_origin
        ),
    )
