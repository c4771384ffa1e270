"""Manager tasks in the dashboard: the calls to make, and closing one with its outcome."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from mailer.campaigns.tasks import close_task
from mailer.clock import utcnow
from mailer.errors import ValidationError
from mailer.models import Contact, ManagerTask, User
from mailer.models.task import TASK_OUTCOMES
from mailer.web.database import db_session
from mailer.web.ui.auth import login_required
from mailer.web.ui.blueprint import bp


@bp.get("/tasks")
@login_required
def tasks() -> str:
    """Open tasks, due first, and the last closed ones with their outcomes."""
    rows = db_session().execute(
        select(ManagerTask, Contact, User.email)
        .join(Contact, Contact.id == ManagerTask.contact_id)
        .outerjoin(User, User.id == ManagerTask.assignee_id)
        .where(ManagerTask.store_id == g.store.id)
        .order_by(ManagerTask.status.desc(), ManagerTask.due_at, ManagerTask.id)
        .limit(500)
    ).all()
    open_rows = [row for row in rows if row[0].status == "open"]
    closed_rows = sorted((row for row in rows if row[0].status != "open"), key=lambda r: r[0].closed_at, reverse=True)[:50]
    return render_template("ui/tasks.html", open_rows=open_rows, closed_rows=closed_rows, outcomes=TASK_OUTCOMES, now=utcnow())


@bp.post("/tasks/<int:task_id>/close")
@login_required
def close_manager_task(task_id: int) -> Response:
    """Close one of the store's tasks with the outcome chosen."""
    task = db_session().scalar(select(ManagerTask).where(ManagerTask.id == task_id, ManagerTask.store_id == g.store.id))
    if task is None:
        abort(404)
    try:
        close_task(db_session(), task, request.form.get("outcome", ""), utcnow())
        flash("Task closed.", "success")
    except ValidationError as exc:
        flash(exc.message, "error")
    target = request.form.get("back")
    if target == "contact":
        return redirect(url_for("ui.contact", contact_id=task.contact_id))
    return redirect(url_for("ui.tasks"))
