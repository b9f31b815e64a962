"""Staff page of the job queue: ``/staff/jobs``."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from ..security import staff_required
from ..views_common import act
from . import services

bp = Blueprint("jobs", __name__, url_prefix="/staff/jobs")


@bp.get("/")
@staff_required
def index():
    return render_template("jobs/index.html", overview=services.overview(current_user), action_form=FlaskForm())


@bp.post("/<int:message_id>/retry")
@staff_required
def retry(message_id: int):
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    return act(lambda: services.retry(current_user, message_id), _("已重新排队，将尽快执行。"), url_for("jobs.index"))
