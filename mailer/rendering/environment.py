"""The two sandboxed Jinja environments (HTML, autoescaped; text, not) and the limits they run under."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from decimal import Decimal
from itertools import islice
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from mailer.errors import TemplateError
from mailer.rendering import filters
from mailer.rendering.scan import unsafe_constructs

# A template's own source (each file, and the layout) may not exceed this.
MAX_SOURCE_BYTES = 256 * 1024
# Rendering stops once an email's HTML or text grows past this: a loop has run away.
# (Gmail clips messages at ~100 KB; anything near 1 MB is a bug, not an email.)
MAX_OUTPUT_CHARS = 1024 * 1024
# A subject is one header line; RFC 5322 caps a line at 998 characters.
MAX_SUBJECT_CHARS = 998
# `'x' * n` and `n ** m` build their result before any output check can see it.
MAX_SEQUENCE_LENGTH = 100_000
MAX_EXPONENT = 100

# Maps a line of the compiled source back to (file name, line) for error messages.
LineMap = Callable[[int | None], tuple[str, int | None]]


class MailSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus plain-data conveniences and limits on giant intermediate values."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        """On a plain dict, a key wins over a method of the same name.

        The context is plain dicts, so `cart.items` must be the cart's items, not
        `dict.items`. Everything else goes through the sandbox's checks.
        """
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        """Refuse `*` and `**` whose result would be huge before it is built."""
        if operator == "*":
            sequence, count = (
                (left, right) if isinstance(left, str | list | tuple) else (right, left)
            )
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(count, int)
                and len(sequence) * count > MAX_SEQUENCE_LENGTH
            ):
                raise SecurityError(f"repeating a value {count} times is over the limit")
        elif operator == "**" and isinstance(right, int | Decimal) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"an exponent of {right} is over the limit of {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def _blank_none(value: Any) -> Any:
    # `{{ contact.first_name }}` for a contact without one prints nothing, not "None".
    return "" if value is None else value


def _make_environment(autoescape: bool) -> MailSandbox:
    env = MailSandbox(
        autoescape=autoescape,
        # StrictUndefined, deliberately: a name or key that is not in the context
        # (a typo such as `contact.frist_name`, a field we never provide) fails
        # loudly when the template is validated against sample data, instead of
        # silently printing nothing in every email. Optional data is never
        # *undefined*: the context builders always provide every documented key,
        # with None when the value is missing, so `contact.first_name or "there"`
        # and `{% if coupon %}` handle a missing first name or coupon at 3 am
        # without an error, and `_blank_none` prints None as nothing.
        undefined=jinja2.StrictUndefined,
        finalize=_blank_none,
        # A line holding only `{% if %}` or `{% endfor %}` leaves no blank line behind:
        # it matters in the text part, and keeps the HTML as tidy as its source.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    # No loader: templates arrive composed (see layout.py); include/import are refused by the scan.
    env.globals.pop("lipsum", None)
    env.filters["money"] = filters.money
    env.filters["date"] = filters.format_date
    return env


HTML_ENV = _make_environment(autoescape=True)
# Text bodies and subjects are not HTML: escaping would print "&amp;" in them.
TEXT_ENV = _make_environment(autoescape=False)


def error_line(exc: BaseException, filename: str) -> int | None:
    """The template line an exception was raised at, read from Jinja's rewritten traceback."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(exc, jinja2.TemplateSyntaxError) and lineno:
        return lineno
    found = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.message or "syntax error"
    if isinstance(exc, SecurityError):
        return f"not allowed in an email template: {exc}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"{exc} (every value must come from the template context)"
    if isinstance(exc, RecursionError):
        return "a macro calls itself without end"
    if isinstance(exc, OverflowError):
        return f"a loop or number is too big: {exc}"
    if isinstance(exc, jinja2.TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def to_template_error(exc: BaseException, filename: str, where: LineMap) -> TemplateError:
    """Turn anything a template raised into a TemplateError naming the file and line it came from."""
    origin, line = where(error_line(exc, filename))
    return TemplateError(_describe(exc), template=origin, line=line)


def build(env: MailSandbox, source: str, filename: str, where: LineMap) -> jinja2.Template:
    """Parse, refuse sandbox escapes found in the syntax tree, and compile `source` under `filename`."""
    try:
        tree = env.parse(source, name=filename, filename=filename)
    except jinja2.TemplateSyntaxError as exc:
        raise to_template_error(exc, filename, where) from None
    problems = unsafe_constructs(tree)
    if problems:
        message, line = problems[0]
        origin, origin_line = where(line)
        raise TemplateError(message, template=origin, line=origin_line)
    try:
        code = env.compile(tree, name=filename, filename=filename)
    except jinja2.TemplateSyntaxError as exc:  # e.g. an unknown filter
        raise to_template_error(exc, filename, where) from None
    # A dict, not make_globals' ChainMap over env.globals: Jinja copies the globals into every
    # render's context, and walking a ChainMap cost 2 % of a send (three renders per email). Both
    # environments' globals are fixed once made, so the copy cannot go stale.
    return env.template_class.from_code(env, code, dict(env.make_globals(None)))


# The output limit is checked after every this many chunks: pulling them in batches keeps the
# per-chunk bookkeeping out of Python (a template yields a hundred-odd chunks per email).
CHUNKS_PER_CHECK = 32


def run(
    template: jinja2.Template,
    context: Mapping[str, Any],
    *,
    filename: str,
    where: LineMap,
    limit: int = MAX_OUTPUT_CHARS,
) -> str:
    """Render `template`, stopping once its output passes `limit` characters (checked every few chunks)."""
    parts: list[str] = []
    size = 0
    try:
        # Template.generate without its wrapping generator; its error handling is below.
        chunks = template.root_render_func(template.new_context(context))
        while batch := list(islice(chunks, CHUNKS_PER_CHECK)):
            size += sum(map(len, batch))
            if size > limit:
                raise TemplateError(
                    f"the output passed {limit} characters; is a loop running away?",
                    template=where(None)[0],
                )
            parts += batch
    except TemplateError:
        raise
    except Exception:  # anything a template does wrong is the template's error
        try:
            # Rewrites the traceback to template lines, as Template.generate does.
            template.environment.handle_exception()
        except Exception as exc:
            raise to_template_error(exc, filename, where) from None
    return "".join(parts)
