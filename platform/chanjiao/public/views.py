"""Public pages: home, browsing and search of open demands and published programmes."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from . import services

bp = Blueprint("public", __name__)


@bp.get("/")
def home():
    return render_template("public/home.html", counts=services.live_counts())


@bp.post("/lang/<code>")
def set_language(code: str):
    if code in ("zh_CN", "en"):
        session["lang"] = code
    target = request.form.get("next", "")
    # Only same-site paths: an absolute URL here would be an open redirect.
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("public.home")
    return redirect(target)
