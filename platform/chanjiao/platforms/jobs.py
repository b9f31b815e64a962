"""Deadlines of demonstration platforms, run by the scheduler's tick."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select

from ..common import change_if
from ..extensions import db
from ..inbox.services import notify_staff
from ..jobs.registry import periodic
from ..models import DemoPlatform, Objection
from ..models._common import utcnow


@periodic("platforms.notice_ended", every=timedelta(minutes=5))
def notice_ended() -> None:
    """Tell staff once per round when a platform's public notice (公示) has ended."""
    now = utcnow()
    not_told = or_(DemoPlatform.notice_end_notified_at.is_(None),
                   DemoPlatform.notice_end_notified_at < DemoPlatform.notice_started_at)
    ended = list(db.session.scalars(
        select(DemoPlatform)
        .where(DemoPlatform.status == "notice", DemoPlatform.notice_ends_at <= now, not_told)
        .order_by(DemoPlatform.id)
    ))
    for platform in ended:
        # Conditional: two ticks (or a tick racing a resumed one) tell staff once.
        if not change_if(platform, DemoPlatform.status == "notice", not_told, notice_end_notified_at=now):
            continue
        open_objections = db.session.scalar(
            select(db.func.count(Objection.id)).where(Objection.platform_id == platform.id, Objection.status == "open")
        ) or 0
        with force_locale("zh_CN"):
            title = _("示范平台“%(name)s”公示期已结束", name=platform.name)
            body = (_("尚有 %(n)s 条异议待处理，处理后方可发布。", n=open_objections) if open_objections
                    else _("公示期内无待处理异议，可以发布。"))
        # A path, as in-app notifications keep them; a job has no request for url_for.
        path = current_app.url_map.bind("").build("curation.platform_detail", {"platform_id": platform.id})
        notify_staff("platform.notice_ended", title, body, path)
