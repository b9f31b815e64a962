"""Explained matches for members (enterprise: programmes for a demand; institution: 商机 for a
programme) and interest requests (申请对接) between them."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..errors import DomainError, NotFound, PermissionDenied
from ..security import org_kind_required, org_user_required, staff_required
from ..uow import unit_of_work
from ..views_common import act, safe_next
from . import labels, services
from .forms import ActionForm, DecisionForm, InterestForm

bp = Blueprint("matches", __name__)


@bp.app_template_global("match_labels")
def _match_labels():
    return labels


@bp.app_template_global("match_level_bounds")
def _match_level_bounds() -> dict[str, int]:
    return services.level_bounds()


def _matches_page(load: Callable, template: str, **context):
    try:
        result = load()
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    return render_template(
        template, result=result, status_label=services.status_label,
        max_message=services.MAX_MESSAGE, **context,
    )


@bp.get("/my/demands/<int:demand_id>/matches")
@org_kind_required("enterprise")
def demand_matches(demand_id: int):
    return _matches_page(
        lambda: services.demand_matches(current_user, demand_id), "matches/demand_matches.html",
    )


@bp.get("/my/programmes/<int:programme_id>/opportunities")
@org_kind_required("institution")
def programme_opportunities(programme_id: int):
    return _matches_page(
        lambda: services.programme_opportunities(current_user, programme_id),
        "matches/programme_opportunities.html",
    )


# Staff see the same pages as the organisation would, read-only, with the technical details.
@bp.get("/staff/matches/demands/<int:demand_id>")
@staff_required
def staff_demand_matches(demand_id: int):
    return _matches_page(
        lambda: services.staff_demand_matches(current_user, demand_id), "matches/demand_matches.html",
        staff_view=True,
    )


@bp.get("/staff/matches/programmes/<int:programme_id>")
@staff_required
def staff_programme_opportunities(programme_id: int):
    return _matches_page(
        lambda: services.staff_programme_opportunities(current_user, programme_id),
        "matches/programme_opportunities.html", staff_view=True,
    )


def _interest_form_choices(form: InterestForm) -> None:
    organisation = current_user.organisation
    if organisation is not None and organisation.kind == "enterprise":
        form.demand_id.choices = [(d.id, d.title) for d in services.own_open_demands(current_user)]
    else:
        form.programme_id.choices = [
            (p.id, p.title) for p in services.own_published_programmes(current_user)
        ]


def _counterpart_or_none(demand_id: int | None, programme_id: int | None):
    try:
        return services.counterpart(current_user, demand_id, programme_id)
    except NotFound:
        return None


@bp.route("/interests/new", methods=["GET", "POST"])
@org_user_required
def interest_new():
    organisation = current_user.organisation
    if organisation is None or organisation.kind not in ("enterprise", "institution"):
        abort(403)
    form = InterestForm()
    _interest_form_choices(form)
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                services.create_interest(
                    current_user, form.demand_id.data, form.programme_id.data, form.message.data or ""
                )
        except DomainError as error:
            form.form_errors.append(error.message)
            status = 400
        else:
            flash(_("对接申请已发送，对方处理后会通知您。"), "success")
            return redirect(safe_next(form.next.data, url_for("matches.interests")))
        other = _counterpart_or_none(form.demand_id.data, form.programme_id.data)
    elif form.is_submitted():
        status = 400
        other = _counterpart_or_none(form.demand_id.data, form.programme_id.data)
    else:
        demand_id = request.args.get("demand_id", type=int)
        programme_id = request.args.get("programme_id", type=int)
        try:
            other = services.counterpart(current_user, demand_id, programme_id)
        except NotFound:
            abort(404)
        if organisation.kind == "enterprise":
            form.programme_id.data = other.id
        else:
            form.demand_id.data = other.id
        form.next.data = safe_next(request.args.get("next"), "")
    return render_template(
        "matches/interest_new.html", form=form, other=other, side=organisation.kind,
        max_message=services.MAX_MESSAGE,
    ), status


@bp.get("/interests")
@org_user_required
def interests():
    try:
        listing = services.list_interests(current_user)
    except PermissionDenied:
        abort(403)
    return render_template(
        "matches/interests.html", listing=listing, decision_form=DecisionForm(),
        action_form=ActionForm(), status_label=services.status_label,
    )


def _decision(action: Callable, success: str, form_class=ActionForm, with_text: bool = False):
    form = form_class()
    if not form.validate_on_submit():
        # CSRF failures are handled centrally (400); what is left is an over-long reply.
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(url_for("matches.interests"))
    if with_text:
        return act(lambda: action(form.response.data or ""), success, url_for("matches.interests"))
    return act(action, success, url_for("matches.interests"))


@bp.post("/interests/<int:request_id>/accept")
@org_user_required
def interest_accept(request_id: int):
    return _decision(
        lambda text: services.accept_interest(current_user, request_id, text),
        _("已接受对接申请，双方联系方式现已可见。"), DecisionForm, with_text=True,
    )


@bp.post("/interests/<int:request_id>/decline")
@org_user_required
def interest_decline(request_id: int):
    return _decision(
        lambda text: services.decline_interest(current_user, request_id, text),
        _("已拒绝对接申请。"), DecisionForm, with_text=True,
    )


@bp.post("/interests/<int:request_id>/withdraw")
@org_user_required
def interest_withdraw(request_id: int):
    return _decision(
        lambda: services.withdraw_interest(current_user, request_id), _("已撤回对接申请。"),
    )
