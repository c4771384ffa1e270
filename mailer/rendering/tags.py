"""Find Jinja tags (`{{ }}`, `{% %}`, `{# #}`) in template source text, by position."""

from __future__ import annotations

import re
from collections.abc import Iterator

# One Jinja tag, matched by position so other modules can cut the source around it.
# Quoted strings inside expressions and statements are skipped as a whole, so
# `{{ "}}" }}` or `{% set s = "%}" %}` are one tag each. Comments contain no strings.
_STRING = r"""'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*\""""
JINJA_TAG = re.compile(
    r"\{\{(?:" + _STRING + r"|[^'\"}]|\}(?!\}))*\}\}"
    r"|\{%(?:" + _STRING + r"|[^'\"%]|%(?!\}))*%\}"
    r"|\{#.*?#\}",
    re.DOTALL,
)

_BLOCK_OPEN = re.compile(r"\{%[-+]?\s*block\s+(\w+)(?:\s+scoped)?(?:\s+required)?\s*[-+]?%\}\Z")
_BLOCK_CLOSE = re.compile(r"\{%[-+]?\s*endblock(?:\s+\w+)?\s*[-+]?%\}\Z")
_EXTENDS = re.compile(r"""\{%[-+]?\s*extends\s+(?:"([^"]*)"|'([^']*)')\s*[-+]?%\}\Z""")


def iter_tags(source: str) -> Iterator[re.Match[str]]:
    """Every Jinja tag in `source`, in order."""
    return JINJA_TAG.finditer(source)


def block_name(tag: str) -> str | None:
    """The name in a `{% block name %}` tag, else None."""
    match = _BLOCK_OPEN.match(tag)
    return match.group(1) if match else None


def is_endblock(tag: str) -> bool:
    """True for `{% endblock %}` (with or without the block's name)."""
    return _BLOCK_CLOSE.match(tag) is not None


def extends_target(tag: str) -> str | None:
    """The quoted name in an `{% extends "…" %}` tag, else None."""
    match = _EXTENDS.match(tag)
    if not match:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def line_of(source: str, offset: int) -> int:
    """The 1-based line number of `offset` in `source`."""
    return source.count("\n", 0, offset) + 1
