"""The organisation dashboard; association staff are sent to their own overview."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user, login_required

from ..errors import NotFound
from . import services

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.get("/")
@login_required
def index():
    if current_user.is_staff:
        return redirect(url_for("staff.index"))
    try:
        overview = services.organisation_overview(current_user)
    except NotFound:
        abort(403)
    return render_template("dashboard/index.html", overview=overview)
