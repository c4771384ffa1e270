"""Contact pages: search, one contact's life cycle, and the unsubscribe and erase actions."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response

from mailer.clock import utcnow
from mailer.ingest.erasure import erase_contact
from mailer.models import Contact, ContactReason, ManagerTask
from mailer.models.task import TASK_OUTCOMES
from mailer.segments.lifecycle import audience_of
from mailer.tracking.suppressions import is_suppressed, suppressed_emails
from mailer.tracking.unsubscribe import unsubscribe
from mailer.web.api.contacts import tier_of
from mailer.web.database import db_session
from mailer.web.ui.auth import login_required
from mailer.web.ui.blueprint import bp
from mailer.web.ui.contact_history import contact_history

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200


def contact_or_404(contact_id: int) -> Contact:
    """The logged-in store's contact with this id; 404 for any other (another store's included)."""
    contact = db_session().scalar(select(Contact).where(Contact.id == contact_id, Contact.store_id == g.store.id))
    if contact is None:
        abort(404)
    return contact


@bp.get("/contacts")
@login_required
def contacts() -> str:
    """Search contacts by email or name; without a query, the most recently active."""
    query = (request.args.get("q") or "").strip()[:MAX_QUERY_CHARS]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    statement = select(Contact).where(Contact.store_id == g.store.id)
    if query:
        needle = query.lower()
        full_name = func.lower(Contact.first_name + " " + Contact.last_name)
        statement = statement.where(or_(
            Contact.email.contains(needle, autoescape=True),
            full_name.contains(needle, autoescape=True),
            func.lower(Contact.last_name).contains(needle, autoescape=True),
        ))
    total = db_session().scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = list(db_session().scalars(
        statement.order_by(Contact.updated_at.desc(), Contact.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ))
    now = utcnow()
    return render_template(
        "ui/contacts.html", contacts=rows, query=query, page=page, total=total, page_size=PAGE_SIZE,
        tiers={c.id: tier_of(c, g.store, now)[0] for c in rows},
        audiences={c.id: audience_of(c.orders_count) for c in rows},
        suppressed=suppressed_emails(db_session(), g.store.id, [c.email for c in rows]),
    )


@bp.get("/contacts/<int:contact_id>")
@login_required
def contact(contact_id: int) -> str:
    """One contact: who they are, their tier and audience, and everything that happened, newest first."""
    person = contact_or_404(contact_id)
    now = utcnow()
    tier, days = tier_of(person, g.store, now)
    return render_template(
        "ui/contact.html", contact=person, tier=tier, days=days, audience=audience_of(person.orders_count),
        suppressed=is_suppressed(db_session(), g.store.id, person.email),
        history=contact_history(db_session(), g.store, person, now),
        tasks=db_session().scalars(
            select(ManagerTask).where(ManagerTask.store_id == g.store.id, ManagerTask.contact_id == person.id)
            .order_by(ManagerTask.created_at.desc())
        ).all(),
        reasons=db_session().scalars(
            select(ContactReason).where(ContactReason.store_id == g.store.id, ContactReason.contact_id == person.id)
            .order_by(ContactReason.created_at.desc())
        ).all(),
        outcomes=TASK_OUTCOMES,
    )


@bp.post("/contacts/<int:contact_id>/unsubscribe")
@login_required
def unsubscribe_contact(contact_id: int) -> Response:
    """Unsubscribe the contact now: planned emails are skipped, active sequences end."""
    person = contact_or_404(contact_id)
    if unsubscribe(db_session(), person, utcnow(), source="dashboard"):
        flash(f"{person.email} is unsubscribed: no marketing email will go to them.", "success")
    else:
        flash(f"{person.email} was already unsubscribed.", "info")
    return redirect(url_for("ui.contact", contact_id=person.id))


@bp.get("/contacts/<int:contact_id>/erase")
@login_required
def erase_contact_confirm(contact_id: int) -> str:
    """Ask before erasing: what goes, what stays, and the address typed again."""
    return render_template("ui/contact_erase.html", contact=contact_or_404(contact_id), mismatch=False)


@bp.post("/contacts/<int:contact_id>/erase")
@login_required
def erase_contact_now(contact_id: int) -> Response | tuple[str, int]:
    """Erase the contact and all their data once the address is typed again; a hashed suppression stays."""
    person = contact_or_404(contact_id)
    typed = (request.form.get("confirm") or "").strip().lower()
    if typed != person.email:
        return render_template("ui/contact_erase.html", contact=person, mismatch=True), 422
    erase_contact(db_session(), person, utcnow(), source="dashboard")
    flash("The contact was erased. Only a one-way hash of the address remains, so it is never emailed again.", "success")
    return redirect(url_for("ui.contacts"))
