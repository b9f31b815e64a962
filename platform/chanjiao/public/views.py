"""Public pages: home, browsing and search of open demands and published programmes."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_login import current_user

from ..errors import NotFound
from ..views_common import safe_next
from . import services

bp = Blueprint("public", __name__)


@bp.get("/")
def home():
    return render_template(
        "public/home.html",
        counts=services.live_counts(),
        latest_demands=services.latest_demands(),
        latest_programmes=services.latest_programmes(),
    )


@bp.get("/demands")
def demands():
    filters = services.parse_filters(request.args, "demand")
    page = services.browse_demands(filters, request.args.get("page", 1))
    return render_template("public/demands.html", page=page, filters=filters)


@bp.get("/programmes")
def programmes():
    filters = services.parse_filters(request.args, "programme")
    page = services.browse_programmes(filters, request.args.get("page", 1))
    return render_template("public/programmes.html", page=page, filters=filters)


@bp.get("/demands/<int:demand_id>")
def demand_detail(demand_id: int):
    try:
        demand = services.visible_demand(demand_id, current_user)
    except NotFound:
        abort(404)
    return render_template(
        "public/demand_detail.html", demand=demand, preview=not services.is_public(demand)
    )


@bp.get("/programmes/<int:programme_id>")
def programme_detail(programme_id: int):
    try:
        programme = services.visible_programme(programme_id, current_user)
    except NotFound:
        abort(404)
    return render_template(
        "public/programme_detail.html",
        programme=programme,
        preview=not services.is_public(programme),
    )


@bp.post("/lang/<code>")
def set_language(code: str):
    if code in ("zh_CN", "en"):
        session["lang"] = code
    return redirect(safe_next(request.form.get("next"), url_for("public.home")))
