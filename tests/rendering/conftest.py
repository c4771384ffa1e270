"""Fixtures for the rendering tests: a snapshot checker and small template builders."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mailer.rendering import TemplateSource, load_template
from mailer.rendering.compile import clear_cache

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.fixture
def snapshot() -> Callable[[str, str], None]:
    """Compare text with tests/rendering/snapshots/NAME; `UPDATE_SNAPSHOTS=1` rewrites the file instead."""

    def check(name: str, actual: str) -> None:
        path = SNAPSHOTS / name
        if os.environ.get("UPDATE_SNAPSHOTS") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"no snapshot {path}; run with UPDATE_SNAPSHOTS=1 to create it")
        expected = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    actual.splitlines(keepends=True),
                    fromfile=f"snapshots/{name}",
                    tofile="rendered",
                )
            )
            pytest.fail(
                f"{name} differs from its snapshot (UPDATE_SNAPSHOTS=1 to accept):\n{diff}",
                pytrace=False,
            )

    return check


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test compiles from scratch, so counting premailer calls is meaningful."""
    clear_cache()


@pytest.fixture
def layout() -> TemplateSource:
    """The default layout (base.html, base.txt), borrowed from the shipped test template."""
    return load_template("test")


@pytest.fixture
def make_source(layout: TemplateSource) -> Callable[..., TemplateSource]:
    """Build a TemplateSource from an HTML step (and optional text step) on the default layout."""

    def make(html: str, text: str | None = None, name: str = "custom/email") -> TemplateSource:
        if text is None:
            text = '{% extends "base.txt" %}{% block content %}Hello{% endblock %}'
        return TemplateSource(name, html, text, layout.layout_html, layout.layout_text)

    return make
