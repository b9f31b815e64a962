"""Association staff pages: counts, the approval queue, organisations, users and decisions."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.forms import add_domain_error
from ..errors import DomainError, NotFound, PermissionDenied
from ..orgs.forms import ActionForm
from ..security import staff_required
from ..uow import unit_of_work
from ..views_common import abort_for
from . import services
from .forms import DecisionForm, MembershipForm

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _page_number() -> int:
    page = request.args.get("page", 1, type=int)
    # An absurd page number must not overflow the database's OFFSET.
    return page if page and 0 < page <= 100_000 else 1


def _organisation_or_404(organisation_id: int):
    try:
        return services.get_organisation(current_user, organisation_id)
    except NotFound:
        abort(404)


@bp.get("/")
@staff_required
def index():
    return render_template(
        "staff/index.html",
        counts=services.platform_counts(),
        queue=services.approval_queue(),
    )


@bp.get("/organisations")
@staff_required
def organisations():
    status = request.args.get("status", "")
    kind = request.args.get("kind", "")
    page = services.list_organisations(
        status, kind, _page_number(), current_app.config["PAGE_SIZE"]
    )
    return render_template("staff/organisations.html", page=page, status=status, kind=kind)


def _organisation_page(organisation, decision_form=None, membership_form=None, status=200):
    page = render_template(
        "staff/organisation.html",
        organisation=organisation,
        members=organisation.users,
        counts=services.posting_counts(organisation),
        history=services.history(organisation),
        decisions=services.DECISIONS,
        decision_label=services.decision_label,
        decision_form=decision_form or DecisionForm(formdata=None),
        membership_form=membership_form or MembershipForm(formdata=None, obj=organisation),
        action_form=ActionForm(formdata=None),
    )
    return page, status


@bp.get("/organisations/<int:organisation_id>")
@staff_required
def organisation(organisation_id: int):
    return _organisation_page(_organisation_or_404(organisation_id))


@bp.post("/organisations/<int:organisation_id>/<any(approve, reject, suspend, reinstate):decision>")
@staff_required
def decide(organisation_id: int, decision: str):
    organisation = _organisation_or_404(organisation_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        return _organisation_page(organisation, decision_form=form, status=400)
    try:
        with unit_of_work():
            services.decide(current_user, organisation, decision, form.reason.data or "")
    except DomainError as error:
        add_domain_error(form, error)
        return _organisation_page(organisation, decision_form=form, status=400)
    flash(
        _(
            "已对“%(name)s”执行：%(decision)s。",
            name=organisation.name,
            decision=services.decision_label(decision),
        ),
        "success",
    )
    return redirect(url_for("staff.organisation", organisation_id=organisation.id))


@bp.post("/organisations/<int:organisation_id>/membership")
@staff_required
def membership(organisation_id: int):
    organisation = _organisation_or_404(organisation_id)
    form = MembershipForm()
    if not form.validate_on_submit():
        return _organisation_page(organisation, membership_form=form, status=400)
    try:
        with unit_of_work():
            services.set_membership(
                current_user, organisation, form.member_since.data, form.founding_member.data
            )
    except DomainError as error:
        add_domain_error(form, error)
        return _organisation_page(organisation, membership_form=form, status=400)
    flash(_("会员信息已保存。"), "success")
    return redirect(url_for("staff.organisation", organisation_id=organisation.id))


@bp.get("/users")
@staff_required
def users():
    search = request.args.get("q", "")
    page = services.list_users(search, _page_number(), current_app.config["PAGE_SIZE"])
    return render_template(
        "staff/users.html", page=page, search=search, action_form=ActionForm(formdata=None)
    )


@bp.post("/users/<int:user_id>/reset")
@staff_required
def user_reset(user_id: int):
    try:
        with unit_of_work():
            user, token = services.issue_user_reset(current_user, user_id)
    except DomainError as error:
        abort_for(error, (NotFound, PermissionDenied))
        flash(error.message, "error")
        return redirect(url_for("staff.users"))
    response = make_response(
        render_template(
            "orgs/one_time_link.html",
            title=_("密码重置链接已生成"),
            link=url_for("auth.reset_password", token=token, _external=True),
            note=_(
                "请把此链接交给 %(name)s（%(email)s）本人。链接只显示这一次，%(hours)s 小时内有效，"
                "只能使用一次；此前生成的链接已失效。",
                name=user.name,
                email=user.email,
                hours=current_app.config["PASSWORD_RESET_HOURS"],
            ),
            back=url_for("staff.users"),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response

