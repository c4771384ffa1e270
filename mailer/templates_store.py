"""A store's edited email templates: saved versions, the newest of which replaces the file template."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.errors import NotFound, TemplateError
from mailer.models import TemplateVersion
from mailer.rendering import TEMPLATES_DIR, load_template, validate_template
from mailer.rendering.templates import LAYOUT_NAME


def file_template_names() -> list[str]:
    """The product's default templates (those with both an .html and a .txt file), layout first."""
    names = {
        path.relative_to(TEMPLATES_DIR).with_suffix("").as_posix()
        for path in TEMPLATES_DIR.rglob("*.html")
        if path.with_suffix(".txt").is_file()
    }
    return sorted(names, key=lambda name: (name != LAYOUT_NAME, name))


def newest_versions(session: Session, store_id: int) -> dict[str, TemplateVersion]:
    """The newest saved version of each of the store's edited templates, by name."""
    newest = (
        select(TemplateVersion.name, func.max(TemplateVersion.version).label("version"))
        .where(TemplateVersion.store_id == store_id)
        .group_by(TemplateVersion.name)
        .subquery()
    )
    rows = session.scalars(
        select(TemplateVersion).join(
            newest,
            (TemplateVersion.name == newest.c.name) & (TemplateVersion.version == newest.c.version),
        ).where(TemplateVersion.store_id == store_id)
    )
    return {row.name: row for row in rows}


def template_overrides(session: Session, store_id: int) -> dict[str, tuple[str, str]]:
    """Name → (html, text) of the newest saved version of each edited template, for load_template()."""
    return {name: (row.html, row.text) for name, row in newest_versions(session, store_id).items()}


def template_history(session: Session, store_id: int, name: str) -> list[TemplateVersion]:
    """Every saved version of one template, newest first."""
    return list(
        session.scalars(
            select(TemplateVersion)
            .where(TemplateVersion.store_id == store_id, TemplateVersion.name == name)
            .order_by(TemplateVersion.version.desc())
        )
    )


def get_version(session: Session, store_id: int, name: str, version_id: int) -> TemplateVersion:
    """One saved version of this store's template; NotFound for another store's or another name's."""
    row = session.scalar(
        select(TemplateVersion).where(
            TemplateVersion.id == version_id,
            TemplateVersion.store_id == store_id,
            TemplateVersion.name == name,
        )
    )
    if row is None:
        raise NotFound("no such version of this template")
    return row


def template_exists(name: str, overrides: dict[str, tuple[str, str]]) -> bool:
    """True when `name` is a file template or one of the store's own."""
    if name in overrides:
        return True
    try:
        load_template(name)
    except (NotFound, TemplateError):
        return False
    return True


def check_template(
    name: str, html: str, text: str, subject: str | None, overrides: dict[str, tuple[str, str]]
) -> None:
    """Raise TemplateError unless the template (with the store's other edits) validates.

    A new layout is checked with every template that extends it, since a layout that breaks
    one step's email must not be saved.
    """
    edited = {**overrides, name: (html, text)}
    if name != LAYOUT_NAME:
        validate_template(load_template(name, overrides=edited), subject)
        return
    for step in sorted({*file_template_names(), *overrides} - {LAYOUT_NAME}):
        validate_template(load_template(step, overrides=edited), None)


def save_version(
    session: Session,
    *,
    store_id: int,
    name: str,
    html: str,
    text: str,
    subject: str | None,
    user_id: int | None,
    now: datetime,
) -> TemplateVersion:
    """Validate and store a new version of a template; raises TemplateError and stores nothing if it is broken.

    `subject` is only the editor's sample subject, kept with the version: campaign steps have
    their own, checked where they are edited.
    """
    check_template(name, html, text, None, template_overrides(session, store_id))
    latest = session.scalar(
        select(func.max(TemplateVersion.version)).where(
            TemplateVersion.store_id == store_id, TemplateVersion.name == name
        )
    )
    row = TemplateVersion(
        store_id=store_id,
        name=name,
        version=(latest or 0) + 1,
        html=html,
        text=text,
        subject=subject or None,
        user_id=user_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row
