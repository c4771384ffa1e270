"""Email rendering: sandboxed Jinja on templates whose CSS is inlined once per version."""

from mailer.rendering.compile import CompiledTemplate, compile_template
from mailer.rendering.context import build_context, sample_context
from mailer.rendering.render import RenderedEmail, render_email, render_subject
from mailer.rendering.templates import TEMPLATES_DIR, TemplateSource, load_template
from mailer.rendering.validate import validate_template

__all__ = [
    "TEMPLATES_DIR",
    "CompiledTemplate",
    "RenderedEmail",
    "TemplateSource",
    "build_context",
    "compile_template",
    "load_template",
    "render_email",
    "render_subject",
    "sample_context",
    "validate_template",
]
