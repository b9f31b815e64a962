"""Public pages of demonstration platforms (示范平台) and the objection form during notice."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.forms import add_domain_error
from ..errors import DomainError, NotFound
from ..throttles import anonymous_form_limit, limiter
from ..uow import unit_of_work
from . import services

bp = Blueprint("platforms", __name__, url_prefix="/platforms")


def _public_or_404(platform_id: int):
    try:
        return services.public_platform(platform_id)
    except NotFound:
        abort(404)


@bp.get("/")
def index():
    return render_template(
        "platforms/index.html",
        platforms=services.public_platforms(),
        status_label=services.status_label,
        can_object=services.can_object,
    )


@bp.get("/<int:platform_id>")
def detail(platform_id: int):
    platform = _public_or_404(platform_id)
    return render_template(
        "platforms/detail.html",
        platform=platform,
        pairings=services.pairings_of(platform),
        organisations=services.organisations_of(platform),
        status_label=services.status_label,
        is_public_posting=services.is_public_posting,
        can_object=services.can_object(platform),
    )


@bp.route("/<int:platform_id>/objection", methods=["GET", "POST"])
@limiter.limit(anonymous_form_limit, methods=["POST"])
def objection(platform_id: int):
    from ..curation.forms import ObjectionForm

    platform = _public_or_404(platform_id)
    form = ObjectionForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                with unit_of_work():
                    services.submit_objection(
                        platform.id, form.name.data, form.contact.data, form.text.data
                    )
            except DomainError as error:
                add_domain_error(form, error)
                status = 400
            else:
                flash(_("您的异议已提交，协会将在公示期内核实处理。"), "success")
                return redirect(url_for("platforms.detail", platform_id=platform.id))
        else:
            status = 400
    return render_template(
        "platforms/objection.html",
        platform=platform,
        form=form,
        can_object=services.can_object(platform),
    ), status
