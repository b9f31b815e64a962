"""Login, logout (registration, invitations and password resets live here too)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..errors import DomainError
from ..extensions import db
from . import services
from .forms import LoginForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    # Same-site paths only: anything else would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("public.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data, request.remote_addr)
        except services.LoginThrottled as error:
            db.session.commit()
            form.form_errors.append(error.message)
            status = 429
        except DomainError as error:
            db.session.commit()  # keep the failure count
            form.form_errors.append(error.message)
            status = 401
        else:
            db.session.commit()
            login_user(user)
            flash(_("欢迎回来，%(name)s。", name=user.name), "success")
            return redirect(_safe_next(request.args.get("next")) or url_for("public.home"))
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    logout_user()
    flash(_("您已安全退出。"), "success")
    return redirect(url_for("public.home"))
