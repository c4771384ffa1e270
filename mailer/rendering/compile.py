"""Compile a template once per version: compose with the layout, inline CSS (premailer), compile Jinja; LRU-cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import jinja2

from mailer.rendering.environment import HTML_ENV, TEXT_ENV, LineMap, build
from mailer.rendering.inline import inline_css
from mailer.rendering.templates import TemplateSource

# Compiled templates kept in memory. Each is a few hundred KB at most; a store has
# a handful of templates, and an edit makes a new version (the old one ages out).
CACHE_SIZE = 256


@dataclass(frozen=True)
class CompiledTemplate:
    """A template ready to render per recipient: inlined HTML and text as compiled Jinja."""

    name: str
    version: str
    html: jinja2.Template = field(repr=False)
    text: jinja2.Template = field(repr=False)
    inlined_source: str = field(repr=False)  # the HTML template after inlining, before Jinja
    html_filename: str = field(repr=False)
    text_filename: str = field(repr=False)
    html_origin: LineMap = field(repr=False)  # compiled HTML line -> (file, line) as written
    text_origin: LineMap = field(repr=False)


def _compile(source: TemplateSource) -> CompiledTemplate:
    html_file, text_file = f"{source.name}.html", f"{source.name}.txt"
    html = source.composed_html()
    text = source.composed_text()
    # Parse and scan the HTML as written first, so a syntax error or a sandbox
    # escape is reported against the files the marketer edits, before premailer
    # gets to rearrange anything.
    build(HTML_ENV, html.source, html_file, html.origin)
    inlined = inline_css(html.source, html.error)

    def html_origin(line: int | None) -> tuple[str, int | None]:
        return html.origin(inlined.composed_line(line))

    return CompiledTemplate(
        name=source.name,
        version=source.version,
        html=build(HTML_ENV, inlined.source, html_file, html_origin),
        text=build(TEXT_ENV, text.source, text_file, text.origin),
        inlined_source=inlined.source,
        html_filename=html_file,
        text_filename=text_file,
        html_origin=html_origin,
        text_origin=text.origin,
    )


class _LRU:
    """A small thread-safe LRU of compiled templates keyed by (name, version)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, str], CompiledTemplate] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str]) -> CompiledTemplate | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            self.entries.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str], entry: CompiledTemplate) -> None:
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.hits = self.misses = 0


_cache = _LRU(CACHE_SIZE)


def compile_template(source: TemplateSource) -> CompiledTemplate:
    """The compiled form of `source`, built (premailer included) only the first time its version is seen.

    Raises TemplateError for a template that does not parse, tries to leave the
    sandbox, or cannot be inlined. Two threads missing at once may both compile;
    the result is the same, and the last one stays.
    """
    key = (source.name, source.version)
    compiled = _cache.get(key)
    if compiled is None:
        compiled = _compile(source)
        _cache.put(key, compiled)
    return compiled


def cache_info() -> dict[str, int]:
    """Hits, misses and size of the compiled-template cache (for tests and the benchmark)."""
    return {"hits": _cache.hits, "misses": _cache.misses, "size": len(_cache.entries)}


def clear_cache() -> None:
    """Forget every compiled template."""
    _cache.clear()
