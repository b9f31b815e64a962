"""Members' pages for their own demands and programmes, and staff curation of skill tags."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError

from ..auth.forms import add_domain_error
from ..errors import DomainError, NotFound
from ..security import org_kind_required, staff_required
from ..uow import unit_of_work
from ..views_common import act
from . import services
from .forms import DemandForm, MergeForm, ProgrammeForm, SynonymsForm, split_tags

bp = Blueprint("postings", __name__)


def _get_or_404(getter: Callable, posting_id: int):
    try:
        return getter(current_user, posting_id)
    except NotFound:
        abort(404)


def _run_action(action: Callable, posting_id: int, success: str, target: str):
    """A status change: 404 for someone else's posting, a flash for a refused rule
    (InvalidTransition, PermissionDenied of the publish gate, ...)."""
    return act(lambda: action(current_user, posting_id), success, url_for(target))


def _save(form: FlaskForm, save: Callable[[], object], template: str, **context):
    """Validate, call the service in one unit of work; re-render with field messages on any
    refusal (nothing written: resolve_skills may have flushed new tags)."""
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                posting = save()
        except NotFound:
            abort(404)
        except DomainError as error:
            add_domain_error(form, error)
            status = 400
        except IntegrityError:
            # Two people created the same new skill tag at the same moment (seen at the commit,
            # which ends the block): ask for a resubmit.
            form.form_errors.append(_("保存时与其他人的修改冲突，请重新提交。"))
            status = 409
        else:
            return posting, None
    elif form.is_submitted():
        status = 400
    return None, (render_template(template, form=form, **context), status)


# --------------------------------------------------------------------------- demands


@bp.get("/my/demands")
@org_kind_required("enterprise")
def my_demands():
    return render_template(
        "postings/my_demands.html",
        demands=services.list_own_demands(current_user),
        organisation=current_user.organisation,
    )


@bp.route("/my/demands/new", methods=["GET", "POST"])
@org_kind_required("enterprise")
def demand_new():
    form = DemandForm()
    posting, page = _save(
        form, lambda: services.create_demand(current_user, form.to_input()),
        "postings/demand_form.html", demand=None,
    )
    if posting is not None:
        flash(_("需求已保存为草稿。"), "success")
        return redirect(url_for("postings.my_demands"))
    return page


@bp.route("/my/demands/<int:demand_id>/edit", methods=["GET", "POST"])
@org_kind_required("enterprise")
def demand_edit(demand_id: int):
    demand = _get_or_404(services.get_own_demand, demand_id)
    if demand.status == "archived":
        flash(_("已归档的需求不能再编辑。"), "error")
        return redirect(url_for("postings.my_demands"))
    form = DemandForm(obj=demand)
    posting, page = _save(
        form, lambda: services.update_demand(current_user, demand_id, form.to_input()),
        "postings/demand_form.html", demand=demand,
    )
    if posting is not None:
        flash(_("需求已保存。"), "success")
        return redirect(url_for("postings.my_demands"))
    return page


@bp.get("/my/demands/<int:demand_id>/preview")
@org_kind_required("enterprise")
def demand_preview(demand_id: int):
    demand = _get_or_404(services.get_own_demand, demand_id)
    return render_template("public/demand_detail.html", demand=demand, preview=True)


@bp.post("/my/demands/<int:demand_id>/publish")
@org_kind_required("enterprise")
def demand_publish(demand_id: int):
    return _run_action(services.publish_demand, demand_id, _("需求已发布。"), "postings.my_demands")


@bp.post("/my/demands/<int:demand_id>/close")
@org_kind_required("enterprise")
def demand_close(demand_id: int):
    return _run_action(services.close_demand, demand_id, _("需求已关闭。"), "postings.my_demands")


@bp.post("/my/demands/<int:demand_id>/archive")
@org_kind_required("enterprise")
def demand_archive(demand_id: int):
    return _run_action(services.archive_demand, demand_id, _("需求已归档。"), "postings.my_demands")


@bp.post("/my/demands/<int:demand_id>/delete")
@org_kind_required("enterprise")
def demand_delete(demand_id: int):
    return _delete(services.delete_demand, demand_id, "postings.my_demands")


def _delete(action: Callable[..., str], posting_id: int, target: str):
    try:
        with unit_of_work():
            outcome = action(current_user, posting_id)
    except NotFound:
        abort(404)
    except DomainError as error:
        flash(error.message, "error")
    else:
        if outcome == "deleted":
            flash(_("草稿已删除。"), "success")
        else:
            flash(_("该内容已被其他记录引用，已改为归档（不会被删除）。"), "warning")
    return redirect(url_for(target))


# --------------------------------------------------------------------------- programmes


@bp.get("/my/programmes")
@org_kind_required("institution")
def my_programmes():
    return render_template(
        "postings/my_programmes.html",
        programmes=services.list_own_programmes(current_user),
        organisation=current_user.organisation,
    )


@bp.route("/my/programmes/new", methods=["GET", "POST"])
@org_kind_required("institution")
def programme_new():
    form = ProgrammeForm()
    posting, page = _save(
        form, lambda: services.create_programme(current_user, form.to_input()),
        "postings/programme_form.html", programme=None,
    )
    if posting is not None:
        flash(_("培训项目已保存为草稿。"), "success")
        return redirect(url_for("postings.my_programmes"))
    return page


@bp.route("/my/programmes/<int:programme_id>/edit", methods=["GET", "POST"])
@org_kind_required("institution")
def programme_edit(programme_id: int):
    programme = _get_or_404(services.get_own_programme, programme_id)
    if programme.status == "archived":
        flash(_("已归档的培训项目不能再编辑。"), "error")
        return redirect(url_for("postings.my_programmes"))
    form = ProgrammeForm(obj=programme)
    posting, page = _save(
        form, lambda: services.update_programme(current_user, programme_id, form.to_input()),
        "postings/programme_form.html", programme=programme,
    )
    if posting is not None:
        flash(_("培训项目已保存。"), "success")
        return redirect(url_for("postings.my_programmes"))
    return page


@bp.get("/my/programmes/<int:programme_id>/preview")
@org_kind_required("institution")
def programme_preview(programme_id: int):
    programme = _get_or_404(services.get_own_programme, programme_id)
    return render_template("public/programme_detail.html", programme=programme, preview=True)


@bp.post("/my/programmes/<int:programme_id>/publish")
@org_kind_required("institution")
def programme_publish(programme_id: int):
    return _run_action(
        services.publish_programme, programme_id, _("培训项目已发布。"), "postings.my_programmes"
    )


@bp.post("/my/programmes/<int:programme_id>/archive")
@org_kind_required("institution")
def programme_archive(programme_id: int):
    return _run_action(
        services.archive_programme, programme_id, _("培训项目已归档。"), "postings.my_programmes"
    )


@bp.post("/my/programmes/<int:programme_id>/delete")
@org_kind_required("institution")
def programme_delete(programme_id: int):
    return _delete(services.delete_programme, programme_id, "postings.my_programmes")


# --------------------------------------------------------------------------- skill tags


@bp.get("/skills/suggest")
def skill_suggest():
    """Autocomplete for tag inputs: live tag names and synonyms containing ``q`` (JSON list)."""
    query = request.args.get("q", "")[:50]
    return jsonify(services.suggest_skills(query))


@bp.get("/skills/manage")
@staff_required
def skills_manage():
    page = request.args.get("page", 1, type=int)
    query = request.args.get("q", "")[:50]
    return render_template(
        "postings/skills_manage.html",
        page=services.skill_page(query, page),
        usage=services.skill_usage(),
        query=query,
        merge_form=MergeForm(),
    )


@bp.post("/skills/merge")
@staff_required
def skills_merge():
    form = MergeForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(url_for("postings.skills_manage"))
    try:
        with unit_of_work():
            source = services.live_skill_by_name(form.source.data)
            target = services.live_skill_by_name(form.target.data)
            survivor = services.merge_skills(current_user, source.id, target.id)
            names = {"source": source.name, "target": survivor.name}  # source is gone after the commit
    except DomainError as error:
        flash(error.message, "error")
    else:
        flash(_("已将“%(source)s”合并到“%(target)s”。", **names), "success")
    return redirect(url_for("postings.skills_manage", q=form.target.data or ""))


@bp.post("/skills/<int:skill_id>/synonyms")
@staff_required
def skill_synonyms(skill_id: int):
    form = SynonymsForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(url_for("postings.skills_manage"))
    try:
        with unit_of_work():
            name = services.update_synonyms(
                current_user, skill_id, split_tags(form.synonyms.data or "")
            ).name
    except NotFound:
        abort(404)
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("postings.skills_manage"))
    flash(_("已更新“%(name)s”的同义词。", name=name), "success")
    return redirect(url_for("postings.skills_manage", q=name))
