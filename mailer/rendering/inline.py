"""Inline a template's CSS with premailer while its Jinja tags sit safely behind placeholders.

premailer parses the page with lxml, which rewrites whatever it parses: Jinja syntax
between table rows, inside attribute values or in attribute position would be
moved, escaped or mangled. So every `{{ … }}`, `{% … %}` and `{# … #}` is swapped
for a placeholder the HTML parser keeps in place — an HTML comment
`<!--jinja:12-->` where markup may go (between tags, in text), a bare word
`jinjaph12x` inside attribute values, tags, comments and <title> — and swapped
back after inlining. Then we check that every tag came back, once, in its original
order; if not, the template is refused with the line of the first tag out of place.

premailer never fetches anything: no base_url, no external_styles, network and
file loading off. `<link rel=stylesheet>` is left for the mail client, unread.
cssutils, which premailer parses CSS with, would still fetch an `@import` by itself
(even a relative one, from the disk), so @import rules are moved into a
`<style data-premailer="ignore">` that premailer passes through unparsed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import cssutils
from lxml import etree
from premailer import Premailer

from mailer.errors import TemplateError
from mailer.rendering.tags import iter_tags, line_of

# Composed-source line -> TemplateError naming the original file and line.
ErrorAt = Callable[[str, int | None], TemplateError]

_COMMENT_TOKEN = "<!--jinja:{}-->"
_WORD_TOKEN = "jinjaph{}x"
# lxml lower-cases attribute names, and may print a bare attribute as `name=""`.
_TOKEN = re.compile(r"<!--jinja:(\d+)-->|jinjaph(\d+)x(?:=\"\")?", re.IGNORECASE)
_DOCTYPE = re.compile(r"\s*(?:<!--.*?-->\s*)*<!doctype", re.IGNORECASE | re.DOTALL)
_LEADING_DOCTYPE = re.compile(r"\A<!DOCTYPE[^>]*>\n?", re.IGNORECASE)

# Elements whose content the HTML parser reads as text, not markup.
_RAW_TEXT = frozenset({"style", "script", "title", "textarea"})
_SPACE = " \t\n\r\f"

# One handler object: premailer adds the handler it is given to cssutils' global
# logger on every instance, and logging ignores a handler it already has.
_SILENT = logging.NullHandler()


class _HtmlState:
    """Where in HTML syntax the literal text between Jinja tags has left us."""

    def __init__(self) -> None:
        self.state = "data"
        self.tag = ""
        self.closing = False

    def _end_of_tag(self) -> None:
        self.state = "raw" if self.tag in _RAW_TEXT and not self.closing else "data"

    def feed(self, text: str) -> None:
        i, n = 0, len(text)
        lowered = text.lower() if self.state == "raw" or "<" in text else text
        while i < n:
            state = self.state
            if state == "data":
                j = text.find("<", i)
                if j < 0:
                    return
                after = text[j + 1 : j + 2]
                if text.startswith("<!--", j):
                    self.state, i = "comment", j + 4
                elif after in ("!", "?"):
                    self.state, i = "declaration", j + 2
                elif after == "/" or after.isalpha():
                    self.closing = after == "/"
                    self.state, self.tag = "tagname", ""
                    i = j + (2 if self.closing else 1)
                else:
                    i = j + 1  # a lone "<" in text
            elif state == "tagname":
                while i < n and (text[i].isalnum() or text[i] in "-:"):
                    self.tag += text[i].lower()
                    i += 1
                if i < n:
                    self.state = "attributes"
            elif state == "attributes":
                char = text[i]
                if char == ">":
                    self._end_of_tag()
                elif char == "=":
                    self.state = "before_value"
                i += 1
            elif state == "before_value":
                char = text[i]
                if char == '"':
                    self.state = "double_quoted"
                elif char == "'":
                    self.state = "single_quoted"
                elif char == ">":
                    self._end_of_tag()
                elif char not in _SPACE:
                    self.state = "unquoted"
                i += 1
            elif state == "unquoted":
                char = text[i]
                if char in _SPACE:
                    self.state = "attributes"
                elif char == ">":
                    self._end_of_tag()
                i += 1
            elif state in ("double_quoted", "single_quoted"):
                j = text.find('"' if state == "double_quoted" else "'", i)
                if j < 0:
                    return
                self.state, i = "attributes", j + 1
            elif state == "comment":
                j = text.find("-->", i)
                if j < 0:
                    return
                self.state, i = "data", j + 3
            elif state == "declaration":
                j = text.find(">", i)
                if j < 0:
                    return
                self.state, i = "data", j + 1
            else:  # raw text: only its own end tag ends it
                j = lowered.find("</" + self.tag, i)
                if j < 0:
                    return
                self.state, i = "data", j

    def placeholder(self, index: int) -> str:
        """The placeholder for a Jinja tag met in the current state, and the state after it."""
        state = self.state
        if state == "data":
            return _COMMENT_TOKEN.format(index)
        word = _WORD_TOKEN.format(index)
        if state in ("tagname", "attributes"):
            # Standing in for whole attributes: keep it a separate attribute name.
            self.state = "attributes"
            return f" {word} "
        if state in ("before_value", "unquoted"):
            self.state = "unquoted"  # the placeholder is (part of) the value
        return word


@dataclass(frozen=True)
class _Tag:
    text: str
    line: int  # in the composed source


def protect(source: str, error_at: ErrorAt) -> tuple[str, list[_Tag]]:
    """Swap every Jinja tag for a placeholder the HTML parser keeps in place."""
    if "jinjaph" in source.lower() or "<!--jinja:" in source:
        raise error_at("the text 'jinjaph' / '<!--jinja:' is reserved for the CSS inliner", None)
    html = _HtmlState()
    parts: list[str] = []
    tags: list[_Tag] = []
    position = 0
    for match in iter_tags(source):
        html.feed(source[position : match.start()])
        line = line_of(source, match.start())
        if html.state == "raw" and html.tag == "style":
            raise error_at(
                "Jinja inside <style> is not supported: CSS is inlined once per template, "
                'not per recipient; use a style="…" attribute instead',
                line,
            )
        parts.append(source[position : match.start()])
        parts.append(html.placeholder(len(tags)))
        tags.append(_Tag(match.group(), line))
        position = match.end()
    parts.append(source[position:])
    return "".join(parts), tags


def restore(html: str, tags: list[_Tag], error_at: ErrorAt) -> tuple[str, list[tuple[int, int]]]:
    """Put the Jinja tags back; also return (output line, composed line) where each tag starts."""
    parts: list[str] = []
    anchors: list[tuple[int, int]] = []
    expected = 0
    position = 0
    line = 1
    for match in _TOKEN.finditer(html):
        index = int(match.group(1) or match.group(2))
        if index != expected:
            # The parser dropped, duplicated or moved something around this tag.
            missing = tags[min(expected, len(tags) - 1)]
            raise error_at(
                f"the CSS inliner could not keep the HTML around {missing.text!r} in place; "
                "check that the tags around it are balanced and that it is not inside <style>",
                missing.line,
            )
        literal = html[position : match.start()]
        line += literal.count("\n")
        parts.append(literal)
        parts.append(tags[index].text)
        anchors.append((line, tags[index].line))
        line += tags[index].text.count("\n")
        position = match.end()
        expected += 1
    if expected != len(tags):
        missing = tags[expected]
        raise error_at(
            f"the CSS inliner lost {missing.text!r}; check the HTML around it", missing.line
        )
    parts.append(html[position:])
    return "".join(parts), anchors


def _refuse_fetch(url: str) -> None:
    """cssutils fetcher that fetches nothing: an @import is kept for the mail client, never read here."""
    return None


def _split_imports(css: str) -> tuple[str, str]:
    """(the @import rules, the rest) of a style sheet, parsed without fetching anything."""
    parser = cssutils.CSSParser(
        fetcher=_refuse_fetch, validate=False, raiseExceptions=False, loglevel=logging.CRITICAL
    )
    sheet = parser.parseString(css)
    imports = [rule for rule in sheet.cssRules if rule.type == rule.IMPORT_RULE]
    for rule in imports:
        sheet.deleteRule(rule)
    rest = sheet.cssText.decode("utf-8") if isinstance(sheet.cssText, bytes) else sheet.cssText
    return "\n".join(rule.cssText for rule in imports), rest


def _keep_external_css_unread(root: etree._Element) -> None:
    """Move @import rules out of premailer's sight, and drop attributes premailer would warn about."""
    for style in root.iter("style"):
        marker = style.get("data-premailer")
        if marker is not None and marker != "ignore":
            del style.attrib["data-premailer"]  # premailer warns on any other value
        css = style.text or ""
        if marker == "ignore" or "@" not in css:
            continue
        imports, rest = _split_imports(css)
        if imports:
            kept = etree.Element("style", {"data-premailer": "ignore"})
            kept.text = imports
            kept.tail = "\n"
            style.addprevious(kept)
            style.text = rest
        if "@import" in rest.lower():
            raise ValueError("@import is only allowed at the top of a <style>")


def _premailer() -> Premailer:
    return Premailer(
        base_url=None,  # no base: nothing relative is resolved, let alone loaded
        external_styles=None,
        allow_network=False,
        allow_loading_external_files=False,
        disable_link_rewrites=True,  # links stay exactly as written; they hold Jinja
        disable_validation=True,  # keep vendor and email-client CSS cssutils does not know
        cssutils_logging_handler=_SILENT,
        cssutils_logging_level=logging.CRITICAL,
        keep_style_tags=False,
        strip_important=False,  # media-query overrides in the leftover <style> need their !important
    )


@dataclass(frozen=True)
class Inlined:
    """A template source with its CSS inlined, and a map of its lines back to the composed source."""

    source: str
    anchors: tuple[tuple[int, int], ...]

    def composed_line(self, line: int | None) -> int | None:
        """The composed-source line an inlined-source line came from (exact on Jinja tags)."""
        if line is None:
            return None
        best = None
        for output_line, composed_line in self.anchors:
            if output_line > line:
                break
            best = composed_line + (line - output_line)
        return best


def inline_css(source: str, error_at: ErrorAt) -> Inlined:
    """Inline the <style> rules of a complete Jinja HTML template into style attributes."""
    protected, tags = protect(source, error_at)
    # Built first: creating it silences cssutils' logger, which the @import split below uses too.
    premailer = _premailer()
    try:
        root = etree.fromstring(protected, etree.HTMLParser())
        if root is None:
            raise ValueError("the document is empty")
        _keep_external_css_unread(root)
        tree = premailer.transform(root)
    except Exception as exc:  # lxml, cssutils, cssselect: whatever they choke on is in the template
        raise error_at(f"the CSS inliner could not process this HTML: {exc}", None) from None
    html = etree.tostring(tree, method="html", encoding="unicode")
    if not _DOCTYPE.match(protected):
        html = _LEADING_DOCTYPE.sub("", html)  # lxml adds one; keep the page as written
    restored, anchors = restore(html, tags, error_at)
    return Inlined(restored, tuple(anchors))
