"""Buttons of match alerts: "有合适的新项目/新需求时通知我" and its cancellation (POST, CSRF
checked centrally), each returning to the page it was pressed on."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..errors import NotFound, PermissionDenied
from ..security import org_kind_required
from ..views_common import act
from . import services

bp = Blueprint("alerts", __name__)


def _act(action: Callable, success: str, back: str):
    # Someone else's posting is a 404, a refused permission a 403, any other refusal a flash.
    return act(action, success, back, (NotFound, PermissionDenied))


@bp.post("/my/demands/<int:demand_id>/alert")
@org_kind_required("enterprise")
def demand_subscribe(demand_id: int):
    return _act(
        lambda: services.subscribe_demand(current_user, demand_id),
        _("已开启提醒：有合适的新培训项目发布时，会在消息中通知贵机构。"),
        url_for("matches.demand_matches", demand_id=demand_id),
    )


@bp.post("/my/demands/<int:demand_id>/alert/cancel")
@org_kind_required("enterprise")
def demand_cancel(demand_id: int):
    return _act(
        lambda: services.cancel_demand_alert(current_user, demand_id),
        _("已取消新项目提醒。"),
        url_for("matches.demand_matches", demand_id=demand_id),
    )


@bp.post("/my/programmes/<int:programme_id>/alert")
@org_kind_required("institution")
def programme_subscribe(programme_id: int):
    return _act(
        lambda: services.subscribe_programme(current_user, programme_id),
        _("已开启提醒：有合适的新需求发布时，会在消息中通知贵机构。"),
        url_for("matches.programme_opportunities", programme_id=programme_id),
    )


@bp.post("/my/programmes/<int:programme_id>/alert/cancel")
@org_kind_required("institution")
def programme_cancel(programme_id: int):
    return _act(
        lambda: services.cancel_programme_alert(current_user, programme_id),
        _("已取消新需求提醒。"),
        url_for("matches.programme_opportunities", programme_id=programme_id),
    )
