"""The user's API tokens: list, create (the secret is shown once) and revoke."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..errors import DomainError, NotFound
from ..security import org_user_required
from ..uow import unit_of_work
from . import services
from .forms import TokenForm

bp = Blueprint("tokens", __name__, url_prefix="/account/tokens")


def _index_page(form: TokenForm, status: int = 200):
    return render_template(
        "tokens/index.html",
        form=form,
        tokens=services.list_tokens(current_user),
    ), status


@bp.get("/")
@org_user_required
def index():
    return _index_page(TokenForm())


@bp.post("/")
@org_user_required
def create():
    form = TokenForm()
    if not form.validate_on_submit():
        return _index_page(form, 400)
    try:
        with unit_of_work():
            token, secret = services.create_token(current_user, form.name.data)
    except DomainError as error:
        form.name.errors = [*form.name.errors, error.message]
        return _index_page(form, 400)
    response = render_template("tokens/created.html", token=token, secret=secret)
    # The secret is on this page only: no cache may keep a copy.
    return response, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


@bp.post("/<int:token_id>/revoke")
@org_user_required
def revoke(token_id: int):
    # CSRFProtect has already checked this form's token, as for every post.
    try:
        with unit_of_work():
            token = services.revoke_token(current_user, token_id)
    except NotFound:
        abort(404)
    flash(_("令牌“%(name)s”已撤销，使用它的请求将被拒绝。", name=token.name), "success")
    return redirect(url_for("tokens.index"))
