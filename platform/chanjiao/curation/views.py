"""Staff curation of pairings (/staff/curation), demonstration platforms (/staff/platforms) and
organisations' confirmations (/org/platforms)."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.forms import add_domain_error
from ..errors import DomainError, NotFound, PermissionDenied
from ..platforms import services as platforms
from ..security import org_admin_required, org_user_required, staff_required
from ..uow import unit_of_work
from ..views_common import abort_for, act, safe_next
from . import services
from .forms import OutcomesForm, PairingCreateForm, PlatformForm, ReasonForm

bp = Blueprint("curation", __name__)


def _page_number() -> int:
    page = request.args.get("page", 1, type=int)
    return page if page and 0 < page <= 100_000 else 1


ABORTS = (NotFound, PermissionDenied)  # refusals of these kinds are a 404 / 403 page


# --------------------------------------------------------------------------- the queue


def _queue_page(reason_form=None, create_form=None, failed_pairing_id=None, status=200):
    filters = services.parse_filters(request.args)
    page = services.queue(current_user, filters, _page_number(), current_app.config["PAGE_SIZE"])
    return render_template(
        "curation/queue.html",
        page=page,
        filters=filters,
        interest=services.interest_summary(list(page.items)),
        interest_label=services.interest_label,
        level_label=services.level_label,
        snapshot_level=services.snapshot_level,
        unpaired=services.unpaired_interest(current_user),
        reason_form=reason_form or ReasonForm(formdata=None),
        create_form=create_form or PairingCreateForm(formdata=None),
        failed_pairing_id=failed_pairing_id,
    ), status


@bp.get("/staff/curation")
@staff_required
def queue():
    return _queue_page()


@bp.post("/staff/curation/pairings/<int:pairing_id>/<any(accept, reject):decision>")
@staff_required
def decide(pairing_id: int, decision: str):
    form = ReasonForm()
    if not form.validate_on_submit():
        return _queue_page(reason_form=form, failed_pairing_id=pairing_id, status=400)
    try:
        with unit_of_work():
            pairing = services.decide(current_user, pairing_id, decision, form.reason.data or "")
    except DomainError as error:
        abort_for(error, ABORTS)
        add_domain_error(form, error)
        return _queue_page(reason_form=form, failed_pairing_id=pairing_id, status=400)
    if pairing.status == "accepted":
        flash(_("已通过对接：%(demand)s ↔ %(programme)s。", demand=pairing.demand.title,
                programme=pairing.programme.title), "success")
    else:
        flash(_("已驳回对接：%(demand)s ↔ %(programme)s。", demand=pairing.demand.title,
                programme=pairing.programme.title), "success")
    return redirect(safe_next(
        request.form.get("next_url"), url_for("curation.queue"), under="/staff/curation"
    ))


@bp.post("/staff/curation/pairings")
@staff_required
def pairing_create():
    form = PairingCreateForm()
    if not form.validate_on_submit():
        form.form_errors.append(_("请选择有效的需求和培训项目。"))
        return _queue_page(create_form=form, status=400)
    try:
        with unit_of_work():
            pairing = services.create_pairing(current_user, form.demand_id.data, form.programme_id.data)
    except DomainError as error:
        abort_for(error, (PermissionDenied,))
        add_domain_error(form, error)
        return _queue_page(create_form=form, status=400)
    flash(_("已加入遴选：%(demand)s ↔ %(programme)s。", demand=pairing.demand.title,
            programme=pairing.programme.title), "success")
    return redirect(url_for("curation.queue"))


# --------------------------------------------------------------------------- platforms (staff)


@bp.get("/staff/platforms")
@staff_required
def platform_list():
    return render_template(
        "curation/platforms.html",
        platforms=platforms.list_platforms(current_user),
        status_label=platforms.status_label,
    )


def _platform_or_404(platform_id: int):
    try:
        return platforms.get_platform(current_user, platform_id)
    except NotFound:
        abort(404)


def _platform_form_page(form, platform=None, status=200):
    return render_template(
        "curation/platform_form.html",
        form=form,
        platform=platform,
        accepted=services.accepted_pairings(),
    ), status


def _input(form: PlatformForm) -> platforms.PlatformInput:
    return platforms.PlatformInput(
        name=form.name.data or "",
        description=form.description.data or "",
        goal_trainees=form.goal_trainees.data,
        period_start=form.period_start.data,
        period_end=form.period_end.data,
        notice_days=form.notice_days.data,
        pairing_ids=list(form.pairing_ids.data or []),
    )


@bp.route("/staff/platforms/new", methods=["GET", "POST"])
@staff_required
def platform_new():
    form = PlatformForm()
    if request.method == "GET":
        return _platform_form_page(form)
    if not form.validate_on_submit():
        return _platform_form_page(form, status=400)
    try:
        with unit_of_work():
            platform = platforms.create_platform(current_user, _input(form))
    except DomainError as error:
        abort_for(error, ABORTS)
        add_domain_error(form, error)
        return _platform_form_page(form, status=400)
    flash(_("示范平台“%(name)s”已创建，等待各参与机构确认。", name=platform.name), "success")
    return redirect(url_for("curation.platform_detail", platform_id=platform.id))


@bp.route("/staff/platforms/<int:platform_id>/edit", methods=["GET", "POST"])
@staff_required
def platform_edit(platform_id: int):
    platform = _platform_or_404(platform_id)
    if platform.status != "draft":
        flash(_("示范平台进入公示后不能再修改；如需修改，须有异议成立使其退回草稿。"), "error")
        return redirect(url_for("curation.platform_detail", platform_id=platform.id))
    if request.method == "GET":
        form = PlatformForm(obj=platform)
        form.pairing_ids.data = [str(link.pairing_id) for link in platform.pairings]
        return _platform_form_page(form, platform)
    form = PlatformForm()
    if not form.validate_on_submit():
        return _platform_form_page(form, platform, status=400)
    try:
        with unit_of_work():
            platforms.update_platform(current_user, platform.id, _input(form))
    except DomainError as error:
        abort_for(error, ABORTS)
        add_domain_error(form, error)
        return _platform_form_page(form, platform, status=400)
    flash(_("示范平台已保存。"), "success")
    return redirect(url_for("curation.platform_detail", platform_id=platform.id))


def _platform_page(platform, reason_form=None, outcomes_form=None, status=200):
    return render_template(
        "curation/platform.html",
        platform=platform,
        pairings=platforms.pairings_of(platform),
        history=platforms.history(platform),
        status_label=platforms.status_label,
        action_label=platforms.action_label,
        objection_status_label=platforms.objection_status_label,
        notice_over=platforms.notice_period_over(platform),
        open_objections=platforms.open_objections(platform),
        reason_form=reason_form or ReasonForm(formdata=None),
        outcomes_form=outcomes_form or OutcomesForm(formdata=None),
    ), status


@bp.get("/staff/platforms/<int:platform_id>")
@staff_required
def platform_detail(platform_id: int):
    return _platform_page(_platform_or_404(platform_id))


@bp.post("/staff/platforms/<int:platform_id>/<any(notice, publish):step>")
@staff_required
def platform_transition(platform_id: int, step: str):
    platform = _platform_or_404(platform_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _platform_page(platform, reason_form=form, status=400)
    action = platforms.start_notice if step == "notice" else platforms.publish
    try:
        with unit_of_work():
            action(current_user, platform.id, form.reason.data or "")
    except DomainError as error:
        abort_for(error, ABORTS)
        add_domain_error(form, error)
        return _platform_page(_platform_or_404(platform_id), reason_form=form, status=400)
    flash(_("示范平台已开始公示。") if step == "notice" else _("示范平台已发布。"), "success")
    return redirect(url_for("curation.platform_detail", platform_id=platform.id))


@bp.post("/staff/platforms/<int:platform_id>/complete")
@staff_required
def platform_complete(platform_id: int):
    platform = _platform_or_404(platform_id)
    form = OutcomesForm()
    if not form.validate_on_submit():
        return _platform_page(platform, outcomes_form=form, status=400)
    outcomes = platforms.Outcomes(form.enrolled.data, form.certified.data, form.hired.data)
    try:
        with unit_of_work():
            platforms.complete(current_user, platform.id, outcomes, form.reason.data or "")
    except DomainError as error:
        abort_for(error, ABORTS)
        add_domain_error(form, error)
        return _platform_page(_platform_or_404(platform_id), outcomes_form=form, status=400)
    flash(_("已登记成效，示范平台已完成。"), "success")
    return redirect(url_for("curation.platform_detail", platform_id=platform.id))


@bp.post("/staff/objections/<int:objection_id>/<any(uphold, dismiss):decision>")
@staff_required
def objection_resolve(objection_id: int, decision: str):
    try:
        objection = platforms.get_objection(current_user, objection_id)
    except NotFound:
        abort(404)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _platform_page(objection.platform, reason_form=form, status=400)
    try:
        with unit_of_work():
            platforms.resolve_objection(current_user, objection.id, decision, form.reason.data or "")
    except DomainError as error:
        abort_for(error, ABORTS)
        add_domain_error(form, error)
        return _platform_page(objection.platform, reason_form=form, status=400)
    flash(_("异议已处理。"), "success")
    return redirect(url_for("curation.platform_detail", platform_id=objection.platform_id))


# --------------------------------------------------------------------------- organisations


@bp.get("/org/platforms")
@org_user_required
def org_platforms():
    from ..orgs.forms import ActionForm

    return render_template(
        "curation/org_platforms.html",
        rows=platforms.platforms_of_organisation(current_user),
        status_label=platforms.status_label,
        pairings_of=platforms.pairings_of,
        action_form=ActionForm(formdata=None),
    )


@bp.post("/org/platforms/<int:platform_id>/confirm")
@org_admin_required
def org_confirm(platform_id: int):
    from ..orgs.forms import ActionForm

    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    return act(
        lambda: platforms.confirm_participation(current_user, platform_id),
        lambda participant: _("已确认参与示范平台“%(name)s”。", name=participant.platform.name),
        url_for("curation.org_platforms"),
        ABORTS,
    )
