"""The in-app inbox: the user's notifications, unread first; mark one or all read."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..errors import NotFound
from ..security import login_required
from ..uow import unit_of_work
from ..views_common import is_same_site_path, safe_next
from . import services

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


@bp.app_template_filter("same_site_link")
def same_site_link(link: str | None) -> str:
    return safe_next(link, "")


@bp.get("/")
@login_required
def index():
    return render_template("inbox/index.html", notifications=services.inbox(current_user))


@bp.post("/<int:notification_id>/read")
@login_required
def read(notification_id: int):
    try:
        with unit_of_work():
            link = services.mark_read(current_user, notification_id).link
    except NotFound:
        abort(404)
    if link and is_same_site_path(link):
        return redirect(link)
    return redirect(url_for("inbox.index"))


@bp.post("/read-all")
@login_required
def read_all():
    with unit_of_work():
        count = services.mark_all_read(current_user)
    flash(_("已将 %(n)s 条消息标为已读。", n=count) if count else _("没有未读消息。"), "success")
    return redirect(url_for("inbox.index"))
