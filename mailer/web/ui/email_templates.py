"""Template pages: the list, the code editor with live preview, test send, version history and restore."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from mailer.clock import utcnow
from mailer.delivery import transport_from_settings
from mailer.errors import DeliveryError, NotFound, TemplateError, ValidationError
from mailer.ingest.identity import normalize_email
from mailer.models import Campaign, CampaignStep, Store, TemplateVersion, User
from mailer.outbox.test_send import compose_test_email, deliver_test_email, subject_for_template
from mailer.rendering import (
    RenderedEmail,
    compile_template,
    load_template,
    render_email,
    render_subject,
    sample_context,
)
from mailer.rendering.templates import LAYOUT_NAME, TEMPLATES_DIR
from mailer.templates_store import (
    check_template,
    file_template_names,
    get_version,
    newest_versions,
    save_version,
    template_history,
    template_overrides,
)
from mailer.web.database import database, db_session, settings
from mailer.web.ui.auth import login_required
from mailer.web.ui.blueprint import bp

# A layout has no email of its own: it is previewed and test-sent around this one.
LAYOUT_SAMPLE = "test"
DESCRIPTIONS = {
    LAYOUT_NAME: "The layout every email shares: header, footer, unsubscribe link, postal address.",
    "test": "The email a test send uses when no campaign step is chosen.",
}
SAMPLE_IMAGES = ("ui/sample/item-1.svg", "ui/sample/item-2.svg")


def _known_or_404(name: str) -> None:
    if name not in file_template_names() and name not in template_overrides(db_session(), g.store.id):
        abort(404)


def _used_by(store: Store) -> dict[str, list[tuple[Campaign, CampaignStep]]]:
    used: dict[str, list[tuple[Campaign, CampaignStep]]] = {}
    for campaign in db_session().scalars(select(Campaign).where(Campaign.store_id == store.id).order_by(Campaign.priority.desc())):
        for step in campaign.steps:
            used.setdefault(step.template, []).append((campaign, step))
    return used


def preview_context(store: Store, name: str) -> dict[str, Any]:
    """Sample contact, cart and order data as this store would send it.

    The sample's product pictures are served by the dashboard itself: the store's site has no
    such pictures, and a preview should look finished.
    """
    info = {
        "name": store.name, "domain": store.domain, "postal_address": store.postal_address,
        "currency": store.currency, "sender_name": store.sender_name,
    }
    context = sample_context(info, template=name)
    if context["cart"] is not None:
        for position, item in enumerate(context["cart"]["items"]):
            item["image_url"] = url_for("static", filename=SAMPLE_IMAGES[position % len(SAMPLE_IMAGES)], _external=True)
    return context


def _error_json(exc: TemplateError, name: str) -> dict[str, Any]:
    """A template error for the editor: message, line, and which box (html, text, subject) it is in."""
    field = {f"{name}.html": "html", f"{name}.txt": "text", "subject": "subject"}.get(exc.template)
    return {"message": exc.message, "template": exc.template, "line": exc.line, "field": field}


def _render(store: Store, name: str, html: str, text: str, subject: str, overrides: dict[str, tuple[str, str]]) -> RenderedEmail:
    edited = {**overrides, name: (html, text)}
    shown = LAYOUT_SAMPLE if name == LAYOUT_NAME else name
    compiled = compile_template(load_template(shown, overrides=edited))
    return render_email(compiled, subject, preview_context(store, shown))


def _default_subject(name: str) -> str:
    return subject_for_template(db_session(), g.store.id, LAYOUT_SAMPLE if name == LAYOUT_NAME else name)


@bp.get("/templates")
@login_required
def templates() -> str:
    """Every template: the product's defaults and the store's edits, and which steps use each."""
    saved = newest_versions(db_session(), g.store.id)
    authors = dict(db_session().execute(
        select(User.id, User.email).where(User.store_id == g.store.id)
    ).all())
    names = sorted({*file_template_names(), *saved}, key=lambda n: (n != LAYOUT_NAME, n))
    return render_template(
        "ui/templates.html", names=names, saved=saved, authors=authors, used_by=_used_by(g.store),
        descriptions=DESCRIPTIONS,
    )


def _editor(name: str, *, html: str, text: str, subject: str, status: int = 200, error: dict[str, Any] | None = None,
            viewing: TemplateVersion | None = None, from_default: bool = False) -> tuple[str, int]:
    session = db_session()
    history = template_history(session, g.store.id, name)
    authors = dict(session.execute(select(User.id, User.email).where(User.store_id == g.store.id)).all())
    return render_template(
        "ui/template_edit.html", name=name, html=html, text=text, subject=subject, error=error,
        history=history, authors=authors, viewing=viewing, from_default=from_default,
        is_layout=name == LAYOUT_NAME, description=DESCRIPTIONS.get(name), used_by=_used_by(g.store).get(name, []),
        has_file=name in file_template_names(), test_to=g.user.email,
    ), status


def _file_source(name: str) -> tuple[str, str]:
    html = (TEMPLATES_DIR / f"{name}.html").read_text(encoding="utf-8")
    text = (TEMPLATES_DIR / f"{name}.txt").read_text(encoding="utf-8")
    return html, text


@bp.get("/templates/<path:name>")
@login_required
def edit_template(name: str) -> tuple[str, int]:
    """The editor, filled with the newest saved version (or the default file, or `?default=1`)."""
    _known_or_404(name)
    newest = newest_versions(db_session(), g.store.id).get(name)
    if newest is not None and request.args.get("default") != "1":
        return _editor(name, html=newest.html, text=newest.text, subject=newest.subject or _default_subject(name))
    if name not in file_template_names():
        abort(404)
    html, text = _file_source(name)
    return _editor(name, html=html, text=text, subject=_default_subject(name), from_default=newest is not None)


@bp.post("/templates/<path:name>")
@login_required
def save_template(name: str) -> Response | tuple[str, int]:
    """Save the editor's content as a new version, unless it does not validate."""
    _known_or_404(name)
    html, text = request.form.get("html", ""), request.form.get("text", "")
    subject = request.form.get("subject", "").strip()
    try:
        # The subject is the editor's sample (steps keep their own): it must render, with sample data.
        render_subject(subject or _default_subject(name), preview_context(g.store, name))
        row = save_version(
            db_session(), store_id=g.store.id, name=name, html=html, text=text, subject=subject or None,
            user_id=g.user.id, now=utcnow(),
        )
    except TemplateError as exc:
        return _editor(name, html=html, text=text, subject=subject, status=422, error=_error_json(exc, name))
    flash(f"Saved version {row.version} of {name}. New emails use it from now on.", "success")
    return redirect(url_for("ui.edit_template", name=name))


@bp.post("/templates/<path:name>/preview")
@login_required
def preview_template(name: str) -> Response:
    """Render the editor's content with sample data: the HTML, text and subject, or the error and its line."""
    _known_or_404(name)
    body = request.get_json(silent=True) or {}
    html, text = str(body.get("html", "")), str(body.get("text", ""))
    subject = str(body.get("subject") or "") or _default_subject(name)
    overrides = template_overrides(db_session(), g.store.id)
    try:
        rendered = _render(g.store, name, html, text, subject, overrides)
    except TemplateError as exc:
        return jsonify({"ok": False, "error": _error_json(exc, name)})
    problem = None
    try:  # what saving would refuse (the unsubscribe link, the postal address…), said now
        check_template(name, html, text, None, overrides)
    except TemplateError as exc:
        problem = _error_json(exc, name)
    return jsonify({"ok": True, "subject": rendered.subject, "html": rendered.html, "text": rendered.text, "problem": problem})


@bp.post("/templates/<path:name>/test-send")
@login_required
def test_send_template(name: str) -> tuple[Response, int]:
    """Send the editor's content, filled with sample data, to one address through the configured transport."""
    _known_or_404(name)
    body = request.get_json(silent=True) or {}
    html, text = str(body.get("html", "")), str(body.get("text", ""))
    subject = str(body.get("subject") or "") or None
    session = db_session()
    try:
        to_email = normalize_email(str(body.get("to", "")))
        overrides = template_overrides(session, g.store.id)
        check_template(name, html, text, None, overrides)
        email = compose_test_email(
            session, settings(), store_id=g.store.id, template_name=LAYOUT_SAMPLE if name == LAYOUT_NAME else name,
            to_email=to_email, now=utcnow(), subject=subject, overrides={**overrides, name: (html, text)},
        )
    except ValidationError:
        return jsonify({"ok": False, "error": {"message": "That is not an email address."}}), 400
    except TemplateError as exc:
        return jsonify({"ok": False, "error": _error_json(exc, name)}), 422
    # The capture transport writes in a transaction of its own; SQLite has one writer, so this
    # request's transaction ends first.
    session.commit()
    transport = transport_from_settings(settings(), database())
    try:
        summary = deliver_test_email(transport, email)
    except DeliveryError as exc:
        return jsonify({"ok": False, "error": {"message": f"The mail server refused it: {exc.message}"}}), 502
    finally:
        transport.close()
    where = "the outbox" if settings().captures_email else "the mail server"
    return jsonify({"ok": True, "message": f"Sent to {summary['to']} through {where}.", "to": summary["to"]}), 200


def _version_or_404(name: str, version_id: int) -> TemplateVersion:
    try:
        return get_version(db_session(), g.store.id, name, version_id)
    except NotFound:
        abort(404)


@bp.get("/templates/<path:name>/versions/<int:version_id>")
@login_required
def template_version(name: str, version_id: int) -> tuple[str, int]:
    """An earlier version, loaded in the editor: save it (or restore it) to make it current."""
    row = _version_or_404(name, version_id)
    return _editor(name, html=row.html, text=row.text, subject=row.subject or _default_subject(name), viewing=row)


@bp.post("/templates/<path:name>/versions/<int:version_id>/restore")
@login_required
def restore_template(name: str, version_id: int) -> Response | tuple[str, int]:
    """Save an earlier version again as the newest one."""
    row = _version_or_404(name, version_id)
    try:
        saved = save_version(
            db_session(), store_id=g.store.id, name=name, html=row.html, text=row.text, subject=row.subject,
            user_id=g.user.id, now=utcnow(),
        )
    except TemplateError as exc:
        return _editor(name, html=row.html, text=row.text, subject=row.subject or "", status=422,
                       error=_error_json(exc, name), viewing=row)
    flash(f"Restored version {row.version} as version {saved.version}.", "success")
    return redirect(url_for("ui.edit_template", name=name))
