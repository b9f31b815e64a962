"""Organisation admin pages: profile, members, invitations, password-reset links."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import choices
from ..auth.forms import add_domain_error
from ..errors import DomainError
from ..models import User
from ..security import org_admin_required
from ..uow import unit_of_work
from ..views_common import abort_for, act
from . import services
from .forms import ActionForm, InvitationForm, ProfileForm, RoleForm

bp = Blueprint("orgs", __name__, url_prefix="/org")


def _members_page(invitation_form: InvitationForm | None = None, status: int = 200):
    organisation = current_user.organisation
    page = render_template(
        "orgs/members.html",
        organisation=organisation,
        members=services.members(organisation),
        invitations=services.pending_invitations(organisation),
        invitation_form=invitation_form or InvitationForm(formdata=None),
        role_form=RoleForm(formdata=None),
        action_form=ActionForm(formdata=None),
    )
    return page, status


def _one_time_link_page(title: str, link: str, note: str):
    response = make_response(
        render_template("orgs/one_time_link.html", title=title, link=link, note=note)
    )
    # Shown once: never cached, never sent on as a referrer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/members")
@org_admin_required
def members():
    return _members_page()


@bp.post("/invitations")
@org_admin_required
def invite():
    form = InvitationForm()
    if not form.validate_on_submit():
        return _members_page(form, 400)
    try:
        with unit_of_work():
            invitation, code = services.create_invitation(
                current_user, role=form.role.data, email=form.email.data or None
            )
    except DomainError as error:
        abort_for(error)  # objects of another organisation do not exist for this actor: 404
        add_domain_error(form, error)
        return _members_page(form, 400)
    return _one_time_link_page(
        _("邀请链接已生成"),
        url_for("auth.accept_invitation", code=code, _external=True),
        _(
            "请把此链接发给同事。链接只显示这一次，%(days)s 天内有效，只能使用一次。",
            days=(invitation.expires_at - invitation.created_at).days,
        ),
    )


@bp.post("/invitations/<int:invitation_id>/revoke")
@org_admin_required
def revoke_invitation(invitation_id: int):
    ActionForm()  # CSRF is checked globally; the form only documents the intent
    return act(
        lambda: services.revoke_invitation(current_user, invitation_id),
        _("邀请已撤销。"),
        url_for("orgs.members"),
    )


@bp.post("/members/<int:user_id>/role")
@org_admin_required
def member_role(user_id: int):
    form = RoleForm()

    def change_role() -> User:
        services.get_member(current_user, user_id)  # 404 before any form message
        if not form.validate_on_submit():
            raise DomainError("；".join(map(str, form.role.errors)) or _("请选择有效的角色。"))
        return services.change_role(current_user, user_id, form.role.data)

    return act(
        change_role,
        lambda user: _("已将 %(name)s 的角色设为%(role)s。", name=user.name, role=_role_label(user)),
        url_for("orgs.members"),
    )


def _role_label(user: User) -> str:
    return choices.label(choices.ROLES, user.role)


@bp.post("/members/<int:user_id>/deactivate")
@org_admin_required
def member_deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/members/<int:user_id>/activate")
@org_admin_required
def member_activate(user_id: int):
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool):
    def success(user: User) -> str:
        if active:
            return _("已恢复 %(name)s 的账号。", name=user.name)
        return _("已停用 %(name)s 的账号。", name=user.name)

    return act(
        lambda: services.set_member_active(current_user, user_id, active),
        success,
        url_for("orgs.members"),
    )


@bp.post("/members/<int:user_id>/reset")
@org_admin_required
def member_reset(user_id: int):
    try:
        with unit_of_work():
            user, token = services.issue_member_reset(current_user, user_id)
    except DomainError as error:
        abort_for(error)
        flash(error.message, "error")
        return redirect(url_for("orgs.members"))
    return _one_time_link_page(
        _("密码重置链接已生成"),
        url_for("auth.reset_password", token=token, _external=True),
        _(
            "请把此链接交给 %(name)s（%(email)s）本人。链接只显示这一次，%(hours)s 小时内有效，"
            "只能使用一次；此前生成的链接已失效。",
            name=user.name,
            email=user.email,
            hours=_reset_hours(),
        ),
    )


def _reset_hours() -> int:
    return current_app.config["PASSWORD_RESET_HOURS"]


@bp.route("/profile", methods=["GET", "POST"])
@org_admin_required
def profile():
    organisation = current_user.organisation
    editable = services.identity_editable(organisation)
    form = ProfileForm(obj=organisation)
    if not editable:
        # Approved identity is fixed: the fields are not even accepted from the request.
        del form.name
        del form.credit_code
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                resubmitted = services.update_profile(
                    current_user,
                    organisation,
                    contact_name=form.contact_name.data,
                    contact_phone=form.contact_phone.data,
                    address=form.address.data,
                    description=form.description.data or "",
                    name=form.name.data if editable else None,
                    credit_code=form.credit_code.data if editable else None,
                )
        except DomainError as error:
            abort_for(error)
            add_domain_error(form, error)
            status = 400
        else:
            if resubmitted:
                flash(_("资料已保存，并已重新提交协会审核。"), "success")
            else:
                flash(_("机构资料已保存。"), "success")
            return redirect(url_for("orgs.profile"))
    elif form.is_submitted():
        status = 400
    return (
        render_template(
            "orgs/profile.html", form=form, organisation=organisation, editable=editable
        ),
        status,
    )
