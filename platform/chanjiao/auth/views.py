"""Login, logout, registration, accepting invitations and one-time password resets."""
from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..errors import DomainError, NotFound
from ..models import User
from ..orgs import services as orgs
from ..uow import unit_of_work
from . import services
from .forms import (
    InvitationAcceptForm,
    LoginForm,
    NewPasswordForm,
    RegistrationForm,
    add_domain_error,
)

bp = Blueprint("auth", __name__)

SESSION_FINGERPRINT = "auth_fp"


def start_session(user) -> None:
    """Log ``user`` in and remember which password the session was opened with."""
    login_user(user)
    session[SESSION_FINGERPRINT] = services.session_fingerprint(user)


@bp.before_app_request
def end_stale_sessions() -> None:
    # A password reset must end the sessions opened with the old password. (A deactivated user
    # is already anonymous: Flask-Login's is_authenticated follows is_active.)
    if "_user_id" not in session or not current_user.is_authenticated:
        return
    if session.get(SESSION_FINGERPRINT) != services.session_fingerprint(current_user):
        logout_user()
        session.pop(SESSION_FINGERPRINT, None)


def _safe_next(target: str | None) -> str | None:
    # Same-site paths only: anything else would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = _attempt_login(form.email.data, form.password.data)
        if isinstance(user, DomainError):
            form.form_errors.append(user.message)
            status = 429 if isinstance(user, services.LoginThrottled) else 401
        else:
            # The second factor, when the user has one, comes before the session starts.
            from .two_factor_views import continue_login

            return continue_login(user, _safe_next(request.args.get("next")) or url_for("dashboard.index"))
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


def _attempt_login(email: str, password: str) -> User | DomainError:
    """The user these credentials open, or the refusal; either way one unit of work that
    commits. A refused login is still a change to keep (the failure count that throttles
    guessing), so, unlike elsewhere, the refusal is caught inside the unit."""
    with unit_of_work():
        try:
            return services.authenticate(email, password, request.remote_addr)
        except DomainError as error:
            return error


@bp.post("/logout")
def logout():
    logout_user()
    flash(_("您已安全退出。"), "success")
    return redirect(url_for("public.home"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = RegistrationForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                _organisation, user = orgs.register_organisation(
                    orgs.OrganisationData(
                        kind=form.kind.data,
                        name=form.name.data,
                        credit_code=form.credit_code.data,
                        district=form.district.data,
                        address=form.address.data,
                        industry=form.industry.data or None,
                        category=form.category.data or None,
                        description=form.description.data or "",
                        contact_name=form.contact_name.data,
                        contact_phone=form.contact_phone.data,
                    ),
                    orgs.AccountData(form.user_name.data, form.email.data, form.password.data),
                )
        except DomainError as error:
            add_domain_error(form, error)
            status = 400
        else:
            start_session(user)
            flash(_("注册成功。协会工作人员将审核您的机构信息，审核通过后即可发布信息。"), "success")
            return redirect(url_for("dashboard.index"))
    elif form.is_submitted():
        status = 400
    return render_template("auth/register.html", form=form), status


def _no_store(response):
    # One-time links must not linger in shared or back-button caches.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/invite/<code>", methods=["GET", "POST"])
def accept_invitation(code: str):
    try:
        invitation = orgs.find_invitation(code)
    except DomainError as error:
        status = 404 if isinstance(error, NotFound) else 410
        page = render_template("auth/link_refused.html", message=error.message)
        return _no_store(current_app.make_response((page, status)))
    if current_user.is_authenticated:
        page = render_template("auth/link_refused.html", message=_(
            "您已以 %(email)s 登录。请先退出，再用此邀请链接创建新账号。", email=current_user.email
        ))
        return _no_store(current_app.make_response((page, 409)))
    form = InvitationAcceptForm()
    if request.method == "GET" and invitation.email:
        form.email.data = invitation.email
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = orgs.accept_invitation(
                    code, orgs.AccountData(form.user_name.data, form.email.data, form.password.data)
                )
        except DomainError as error:
            add_domain_error(form, error)
            status = 400
        else:
            start_session(user)
            flash(_("账号已创建，欢迎加入%(org)s。", org=user.organisation.name), "success")
            return redirect(url_for("dashboard.index"))
    elif form.is_submitted():
        status = 400
    page = render_template("auth/invite.html", form=form, invitation=invitation)
    return _no_store(current_app.make_response((page, status)))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        reset = services.find_password_reset(token)
    except DomainError as error:
        status = 404 if isinstance(error, NotFound) else 410
        page = render_template("auth/link_refused.html", message=error.message)
        return _no_store(current_app.make_response((page, status)))
    form = NewPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = services.reset_password(token, form.password.data)
        except DomainError as error:
            add_domain_error(form, error)
            status = 400
        else:
            if current_user.is_authenticated and current_user.id == user.id:
                logout_user()  # log in again with the new password
            flash(_("密码已重置，请使用新密码登录。"), "success")
            return redirect(url_for("auth.login"))
    elif form.is_submitted():
        status = 400
    page = render_template("auth/reset.html", form=form, user=reset.user)
    return _no_store(current_app.make_response((page, status)))
