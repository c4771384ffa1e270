"""A static scan of a template's syntax tree for constructs that try to leave the sandbox."""

from __future__ import annotations

import re

from jinja2 import nodes

# Tags that reach for other templates: emails are composed with their layout up
# front (layout.py) and the environments have no loader, so these could only fail
# later, for some recipient.
_LOADING_TAGS: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Include, "{% include %}"),
    (nodes.Import, "{% import %}"),
    (nodes.FromImport, "{% from … import %}"),
    (nodes.Extends, "{% extends %}"),
)

# Filters whose string arguments are looked up like attributes (`"a.b"` walks deeper).
_ATTRIBUTE_FILTERS = frozenset(
    {"attr", "map", "selectattr", "rejectattr", "sort", "groupby", "unique", "sum", "min", "max"}
)

# A str.format field reaching for an internal name: "{0.__class__}", "{x[_secret]}".
_FORMAT_FIELD = re.compile(r"\{[^{}]*(?:\.\s*_|\[\s*_)")

_INTERNAL = "names starting with '_' are internal"


def _private(value: object) -> bool:
    """True when a dotted attribute path has any part starting with '_'."""
    return isinstance(value, str) and any(part.strip().startswith("_") for part in value.split("."))


def _check(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr) and _private(node.attr):
        return f"'.{node.attr}' is not allowed: {_INTERNAL}"
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and _private(node.arg.value)
    ):
        return f"'[{node.arg.value!r}]' is not allowed: {_INTERNAL}"
    if isinstance(node, nodes.Name) and node.name.startswith("__"):
        return f"'{node.name}' is not allowed: {_INTERNAL}"
    if isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
        return _check_attribute_filter(node)
    if (
        isinstance(node, nodes.Getattr)
        and node.attr in {"format", "format_map"}
        and isinstance(node.node, nodes.Const)
        and isinstance(node.node.value, str)
        and _FORMAT_FIELD.search(node.node.value)
    ):
        return f"the format string {node.node.value!r} is not allowed: {_INTERNAL}"
    for kind, label in _LOADING_TAGS:
        if isinstance(node, kind):
            return f"{label} is not supported in email templates"
    return None


def _check_attribute_filter(node: nodes.Filter) -> str | None:
    """`x|attr("…")`, `map(attribute="…")`, `map("attr", "…")`, `sort("…")`: the names they look up."""
    positional = list(node.args)
    if node.name == "map":
        # map's first argument names a filter; only map("attr", name) looks a name up.
        is_attr = (
            positional and isinstance(positional[0], nodes.Const) and positional[0].value == "attr"
        )
        positional = positional[1:2] if is_attr else []
        if node.dyn_args is not None and is_attr:
            return "map('attr', …) may only name a field written as a plain string"
    else:
        positional = positional[:1]
    if node.name == "attr" and not (positional and isinstance(positional[0], nodes.Const)):
        return "the attr filter may only name a field written as a plain string"
    names = positional + [keyword.value for keyword in node.kwargs if keyword.key == "attribute"]
    for name in names:
        if node.name in {"attr", "map"} and not isinstance(name, nodes.Const):
            return f"{node.name}(…) may only name a field written as a plain string"
        if isinstance(name, nodes.Const) and _private(name.value):
            return f"{node.name}({name.value!r}) is not allowed: {_INTERNAL}"
    return None


def unsafe_constructs(tree: nodes.Template) -> list[tuple[str, int]]:
    """(message, line) for each construct that reaches for internals or other templates, by line.

    The sandbox refuses these at run time too; finding them in the syntax tree turns
    "an error for some recipient, some day" into a refusal when the template is saved,
    even inside a branch the sample data never takes.
    """
    found = []
    for node in tree.find_all(nodes.Node):
        message = _check(node)
        if message:
            found.append((message, node.lineno))
    found.sort(key=lambda item: item[1])
    return found
