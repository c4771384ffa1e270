"""Compose a step template with the shared layout at source level, keeping a map back to each file's lines.

A step template reads like ordinary Jinja inheritance:

    {% extends "base.html" %}
    {% block preheader %}Your cart is waiting{% endblock %}
    {% block content %}…{% endblock %}

but the blocks are substituted into the layout's text here, before anything else
happens, because the CSS inliner needs the whole document (the layout's <style>
applies to the step's markup) and the cache must hold one complete, inlined page.
Only blocks may follow `{% extends %}`; `{{ super() }}` is not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailer.errors import TemplateError
from mailer.rendering.tags import block_name, extends_target, is_endblock, iter_tags, line_of


@dataclass(frozen=True)
class Segment:
    """A run of composed lines copied from one file, starting at `line` there."""

    composed_line: int
    origin: str
    line: int


@dataclass(frozen=True)
class Composed:
    """A complete template source plus where each of its lines came from."""

    source: str
    segments: tuple[Segment, ...]
    name: str  # the step's file, named when no line is known

    def origin(self, line: int | None) -> tuple[str, int | None]:
        """The (file name, line) that composed `line` was copied from."""
        if line is None or not self.segments:
            return self.name, None
        # A line where one file's piece ends and the next begins belongs to both;
        # prefer the step's, the file people edit (an unclosed tag in a block is
        # reported at the block's {% endblock %}, on such a line).
        segments = self.segments
        covering = [
            segment
            for index, segment in enumerate(segments)
            if segment.composed_line <= line
            and (index + 1 == len(segments) or segments[index + 1].composed_line >= line)
        ] or [segments[0]]
        mine = [segment for segment in covering if segment.origin == self.name]
        segment = (mine or covering)[-1]
        return segment.origin, segment.line + (line - segment.composed_line)

    def error(self, message: str, line: int | None) -> TemplateError:
        """A TemplateError naming the file and line that composed `line` came from."""
        origin, origin_line = self.origin(line)
        return TemplateError(message, template=origin, line=origin_line)


class _Builder:
    """Appends pieces of several files and records where each piece started."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.segments: list[Segment] = []
        self.line = 1

    def add(self, text: str, origin: str, origin_source: str, offset: int) -> None:
        if not text:
            return
        self.segments.append(Segment(self.line, origin, line_of(origin_source, offset)))
        self.parts.append(text)
        self.line += text.count("\n")

    def build(self, name: str) -> Composed:
        return Composed("".join(self.parts), tuple(self.segments), name)


@dataclass(frozen=True)
class _Block:
    name: str
    start: int  # offset of `{% block %}`
    body_start: int
    body_end: int
    end: int  # offset just past `{% endblock %}`


def _parse_child(source: str, name: str) -> tuple[str | None, int, list[_Block]]:
    """(extends target or None, its line, the top-level blocks) of a step template."""
    target: str | None = None
    target_line = 1
    blocks: list[_Block] = []
    depth = 0
    open_tag = None
    position = 0
    for tag in iter_tags(source):
        text = tag.group()
        if depth == 0:
            literal = source[position : tag.start()]
            if literal.strip():
                if target is None:
                    return None, 1, []  # plain text first: a standalone template
                raise TemplateError(
                    "only {% block %}s may follow {% extends %}; move this into a block",
                    template=name,
                    line=line_of(source, position + len(literal) - len(literal.lstrip())),
                )
            position = tag.end()
            if text.startswith("{#"):
                continue
            if target is None:
                target = extends_target(text)
                if target is None:
                    return None, 1, []  # a standalone template
                target_line = line_of(source, tag.start())
                continue
            if block_name(text) is None:
                raise TemplateError(
                    "only {% block %}s may follow {% extends %}; move this into a block",
                    template=name,
                    line=line_of(source, tag.start()),
                )
            open_tag = tag
            depth = 1
        elif block_name(text) is not None:
            depth += 1
        elif is_endblock(text):
            depth -= 1
            if depth == 0:
                assert open_tag is not None
                blocks.append(
                    _Block(
                        block_name(open_tag.group()) or "",
                        open_tag.start(),
                        open_tag.end(),
                        tag.start(),
                        tag.end(),
                    )
                )
                position = tag.end()
    if depth:
        assert open_tag is not None
        raise TemplateError(
            "this {% block %} is never closed with {% endblock %}",
            template=name,
            line=line_of(source, open_tag.start()),
        )
    if target is not None and source[position:].strip():
        raise TemplateError(
            "only {% block %}s may follow {% extends %}; move this into a block",
            template=name,
            line=line_of(
                source, position + len(source[position:]) - len(source[position:].lstrip())
            ),
        )
    return target, target_line, blocks


def _parse_layout(source: str, name: str) -> list[_Block]:
    """Every block of the layout, nested ones included, in source order."""
    stack: list[re.Match[str]] = []
    blocks: list[_Block] = []
    for tag in iter_tags(source):
        text = tag.group()
        if block_name(text) is not None:
            stack.append(tag)
        elif is_endblock(text):
            if not stack:
                raise TemplateError(
                    "{% endblock %} without a {% block %}",
                    template=name,
                    line=line_of(source, tag.start()),
                )
            opened = stack.pop()
            blocks.append(
                _Block(
                    block_name(opened.group()) or "",
                    opened.start(),
                    opened.end(),
                    tag.start(),
                    tag.end(),
                )
            )
    if stack:
        raise TemplateError(
            "this {% block %} is never closed with {% endblock %}",
            template=name,
            line=line_of(source, stack[-1].start()),
        )
    blocks.sort(key=lambda block: block.start)
    return blocks


def compose(child: str, child_name: str, layout: str | None, layout_name: str) -> Composed:
    """Substitute the step's blocks into the layout; a template without `{% extends %}` stands alone."""
    target, target_line, child_blocks = _parse_child(child, child_name)
    if target is None:
        return Composed(child, (Segment(1, child_name, 1),), child_name)
    if target != layout_name:
        raise TemplateError(
            f'only "{layout_name}" can be extended, not "{target}"',
            template=child_name,
            line=target_line,
        )
    if layout is None:
        raise TemplateError(
            f'extends "{layout_name}" but no layout was loaded with it',
            template=child_name,
            line=target_line,
        )

    overrides: dict[str, _Block] = {}
    for block in child_blocks:
        if block.name in overrides:
            raise TemplateError(
                f"block '{block.name}' is defined twice",
                template=child_name,
                line=line_of(child, block.start),
            )
        overrides[block.name] = block

    layout_blocks = _parse_layout(layout, layout_name)
    seen: set[str] = set()
    for block in layout_blocks:
        if block.name in seen:
            raise TemplateError(
                f"block '{block.name}' is defined twice",
                template=layout_name,
                line=line_of(layout, block.start),
            )
        seen.add(block.name)
    for name, block in overrides.items():
        if name not in seen:
            raise TemplateError(
                f"{layout_name} has no block '{name}'",
                template=child_name,
                line=line_of(child, block.start),
            )

    builder = _Builder()
    position = 0
    for block in layout_blocks:
        if block.name not in overrides or block.start < position:
            continue  # not overridden, or inside a block the step already replaced
        mine = overrides[block.name]
        builder.add(layout[position : block.start], layout_name, layout, position)
        # The step's own block tags replace the layout's, so its whitespace control applies.
        builder.add(child[mine.start : mine.end], child_name, child, mine.start)
        position = block.end
    builder.add(layout[position:], layout_name, layout, position)
    return builder.build(child_name)
