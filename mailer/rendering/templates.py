"""Template sources: a step's HTML and text plus the layout they extend, read from disk or overrides."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mailer.errors import NotFound, TemplateError
from mailer.rendering.environment import MAX_SOURCE_BYTES
from mailer.rendering.layout import Composed, compose

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "emails"

# The layout every step may extend; in `overrides` this key replaces base.html/base.txt.
LAYOUT_NAME = "base"

# "cart/step1", "winback/tier-2", "test": lower-case path segments, no dots, so a name
# can never climb out of the templates directory or pick a file by extension.
_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]*(?:/[a-z0-9_][a-z0-9_-]*)*")


@dataclass(frozen=True)
class TemplateSource:
    """One email template as written: the step's HTML and text, and the layout they extend."""

    name: str
    html: str
    text: str
    layout_html: str | None = None
    layout_text: str | None = None

    @cached_property
    def version(self) -> str:
        """sha256 hex of every source the email is built from, the layout included.

        It changes whenever the step or the layout changes, so a compiled (inlined)
        template cached under (name, version) is never served stale.
        """
        digest = hashlib.sha256()
        for part in (self.html, self.text, self.layout_html, self.layout_text):
            data = b"" if part is None else part.encode("utf-8")
            # Length-prefixed, so moving text from one part to the next changes the hash.
            digest.update(b"-" if part is None else str(len(data)).encode() + b":")
            digest.update(data)
        return digest.hexdigest()

    def composed_html(self) -> Composed:
        """The complete HTML source: the layout with the step's blocks in place."""
        _check_size(self.html, f"{self.name}.html")
        if self.layout_html is not None:
            _check_size(self.layout_html, f"{LAYOUT_NAME}.html")
        return compose(self.html, f"{self.name}.html", self.layout_html, f"{LAYOUT_NAME}.html")

    def composed_text(self) -> Composed:
        """The complete plain-text source: the text layout with the step's blocks in place."""
        _check_size(self.text, f"{self.name}.txt")
        if self.layout_text is not None:
            _check_size(self.layout_text, f"{LAYOUT_NAME}.txt")
        return compose(self.text, f"{self.name}.txt", self.layout_text, f"{LAYOUT_NAME}.txt")


def _check_size(source: str, name: str) -> None:
    size = len(source.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        raise TemplateError(
            f"the template is {size // 1024} KB, over the {MAX_SOURCE_BYTES // 1024} KB limit",
            template=name,
        )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        # Same answer as a missing template: a bad name is not a way to probe the disk.
        raise NotFound(f"no email template named {name!r}")


def _read(directory: Path, relative: str) -> str:
    root = directory.resolve()
    path = (root / relative).resolve()
    # Belt and braces beside the name pattern: a symlink must not lead outside either.
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(f"no email template file {relative!r}")
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise TemplateError(
            f"the file is over the {MAX_SOURCE_BYTES // 1024} KB limit", template=relative
        )
    return path.read_text(encoding="utf-8")


def load_template(
    name: str,
    templates_dir: Path = TEMPLATES_DIR,
    overrides: Mapping[str, tuple[str, str]] | None = None,
) -> TemplateSource:
    """Read `{name}.html` and `{name}.txt` with the layout they extend; `overrides` (name → (html, text)) win over files.

    An override under the key "base" replaces the layout (base.html, base.txt).
    """
    _check_name(name)
    overrides = overrides or {}
    if name in overrides:
        html, text = overrides[name]
    else:
        html = _read(templates_dir, f"{name}.html")
        text = _read(templates_dir, f"{name}.txt")
    if LAYOUT_NAME in overrides:
        layout_html, layout_text = overrides[LAYOUT_NAME]
    else:
        layout_html = _optional(templates_dir, f"{LAYOUT_NAME}.html")
        layout_text = _optional(templates_dir, f"{LAYOUT_NAME}.txt")
    return TemplateSource(name, html, text, layout_html, layout_text)


def _optional(directory: Path, relative: str) -> str | None:
    try:
        return _read(directory, relative)
    except NotFound:
        return None
